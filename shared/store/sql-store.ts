import { conflict, notFound } from '../errors.js';
import type { Queryable, SqlEngine } from './engine.js';
import { GroupCommit } from './group-commit.js';
import { audit } from './repositories/audit.js';
import { cas } from './repositories/cas.js';
import { changes } from './repositories/changes.js';
import { consoleCodes } from './repositories/console.js';
import { devices } from './repositories/devices.js';
import { factories } from './repositories/factories.js';
import { maintenance } from './repositories/maintenance.js';
import { signingKeys } from './repositories/signing-keys.js';
import { storedKeys } from './repositories/stored-keys.js';
import { tokens } from './repositories/tokens.js';
import type {
  AnnouncedNextKey,
  AuditEntry,
  AuditFilter,
  AuditRecord,
  CaState,
  ChangeTopic,
  Device,
  DeviceAuthView,
  DeviceCa,
  DeviceCertificateRotation,
  DeviceListOptions,
  DeviceState,
  DeviceTombstone,
  Factory,
  FactorySettings,
  NewTokenRecord,
  RevokedDescendant,
  OperatorToken,
  SealedKeyRecord,
  SigningKeyRecord,
  SigningKeyTransition,
  Store,
  TokenAuthView,
  TokenKind,
  TokenRecord,
} from './types.js';

/** A token row and/or an audit row for the group commit, with the time the caller asked. */
interface QueuedWrite {
  token: NewTokenRecord | null;
  audit: AuditEntry | null;
  at: number;
}

export interface SqlStoreOptions {
  /** The clock (ms since the epoch) for the times the store records itself: audit, updates. */
  now?: () => number;
}

/**
 * The store on either engine: each method is a short composition of repository calls, in one
 * transaction with its audit record where it changes anything. Token inserts and audit appends,
 * the per-request writes, go through the group commit; any other write commits what is queued
 * first, so writes reach the database in the order they were asked for.
 */
export class SqlStore implements Store {
  readonly engine: 'sqlite' | 'postgres';
  private readonly commits: GroupCommit<QueuedWrite>;
  protected readonly now: () => number;
  private closing: Promise<void> | null = null;

  constructor(
    readonly database: SqlEngine,
    options: SqlStoreOptions = {},
  ) {
    this.engine = database.kind;
    this.now = options.now ?? Date.now;
    this.commits = new GroupCommit(database, (batch) => [
      tokens.rowSet(batch.flatMap((w) => (w.token ? [w.token] : []))),
      audit.rowSet(batch.flatMap((w) => (w.audit ? [{ entry: w.audit, at: w.at }] : []))),
    ]);
  }

  ready(): Promise<void> {
    return this.database.ready();
  }

  /** One transaction for `fn` and the audit record that describes it, after what is queued. */
  private async write<T>(fn: (tx: Queryable) => Promise<T>, entry?: AuditEntry | ((result: T) => AuditEntry | null)): Promise<T> {
    await this.commits.flush();
    return this.database.transaction(async (tx) => {
      const result = await fn(tx);
      const record = typeof entry === 'function' ? entry(result) : entry;
      if (record) await audit.append(tx, record, this.now());
      return result;
    });
  }

  /** Runs an insert, turning a unique violation into the conflict `onDuplicate` names. */
  private async unique<T>(insert: () => Promise<T>, onDuplicate: () => Promise<Error> | Error): Promise<T> {
    try {
      return await insert();
    } catch (e) {
      if (this.database.isUniqueViolation(e)) throw await onDuplicate();
      throw e;
    }
  }

  // ---- factories -------------------------------------------------------------------------

  async createFactory(factory: Factory, entry: AuditEntry): Promise<Factory> {
    await this.write(
      (tx) => this.unique(() => factories.insert(tx, factory), () => conflict('factory_exists', `a factory named "${factory.name}" already exists`)),
      entry,
    );
    return factory;
  }

  getFactory(id: string): Promise<Factory | null> {
    return factories.get(this.database, id);
  }

  getFactoryByName(name: string): Promise<Factory | null> {
    return factories.getByName(this.database, name);
  }

  listFactories(): Promise<Factory[]> {
    return factories.list(this.database);
  }

  getFactorySettings(factoryId: string): Promise<FactorySettings | null> {
    return factories.settings(this.database, factoryId);
  }

  async putFactorySettings(settings: FactorySettings, entry: AuditEntry): Promise<FactorySettings> {
    await this.write((tx) => factories.putSettings(tx, settings), entry);
    return settings;
  }

  // ---- device CAs ------------------------------------------------------------------------

  async addDeviceCa(ca: DeviceCa, entry: AuditEntry): Promise<DeviceCa> {
    await this.write(async (tx) => {
      await this.unique(() => cas.insert(tx, ca), () => conflict('ca_exists', 'this CA certificate is already registered'));
      await changes.bump(this.database, tx, 'device_cas');
    }, entry);
    return ca;
  }

  getDeviceCa(id: string): Promise<DeviceCa | null> {
    return cas.get(this.database, id);
  }

  listDeviceCas(filter: { factoryId?: string } = {}): Promise<DeviceCa[]> {
    return cas.list(this.database, filter.factoryId);
  }

  setDeviceCaState(id: string, state: CaState, reason: string | null, entry: AuditEntry, effects: { revokeDeviceTokens: boolean }): Promise<DeviceCa> {
    return this.write(async (tx) => {
      const ca = await cas.get(tx, id);
      if (!ca) throw notFound('ca_not_found', `no device CA with id ${id}`);
      await cas.setState(tx, id, state, reason);
      if (effects.revokeDeviceTokens) await tokens.revokeOfDevicesUnderCa(tx, id, this.now());
      await changes.bump(this.database, tx, 'device_cas');
      return { ...ca, state, stateReason: reason };
    }, entry);
  }

  addCaRegistrationCode(code: { codeHash: string; factoryId: string; createdAt: number; expiresAt: number }, entry: AuditEntry): Promise<void> {
    return this.write((tx) => cas.addCode(tx, code), entry);
  }

  consumeCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return this.write((tx) => cas.consumeCode(tx, factoryId, codeHash, now));
  }

  hasCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return cas.hasCode(this.database, factoryId, codeHash, now);
  }

  // ---- devices ---------------------------------------------------------------------------

  async insertDevice(device: Device, entry: AuditEntry): Promise<Device> {
    await this.write((tx) => this.insertDeviceRow(tx, device), entry);
    return device;
  }

  async insertDevices(entries: { device: Device; audit: AuditEntry }[]): Promise<Device[]> {
    // One transaction: a refusal of any row (a UUID enrolled meanwhile) rolls back every row.
    await this.write(async (tx) => {
      const at = this.now();
      for (const { device, audit: entry } of entries) {
        await this.insertDeviceRow(tx, device);
        await audit.append(tx, entry, at);
      }
    });
    return entries.map((e) => e.device);
  }

  private insertDeviceRow(tx: Queryable, device: Device): Promise<void> {
    return this.unique(
      () => devices.insert(tx, device),
      // Asked outside the transaction: PostgreSQL takes no statement in one a violation aborted.
      async () =>
        (await devices.exists(this.database, device.uuid))
          ? conflict('device_exists', `a device with UUID ${device.uuid} is already enrolled`)
          : conflict('certificate_in_use', 'this certificate is already enrolled for another device'),
    );
  }

  getDevice(uuid: string): Promise<DeviceAuthView | null> {
    return devices.authView(this.database, uuid);
  }

  listDevices(factoryId: string, options: DeviceListOptions = {}): Promise<Device[]> {
    return devices.list(this.database, factoryId, options);
  }

  countDevicesByCa(factoryId: string): Promise<Map<string, Record<DeviceState, number>>> {
    return devices.countByCa(this.database, factoryId);
  }

  setDeviceState(uuid: string, state: DeviceState, reason: string | null, entry: AuditEntry, effects: { revokeTokens: boolean }): Promise<Device> {
    return this.write(async (tx) => {
      const device = await devices.get(tx, uuid);
      if (!device) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      const now = this.now();
      await devices.setState(tx, uuid, state, reason, now);
      if (effects.revokeTokens) await tokens.revokeOfDevice(tx, uuid, now);
      return { ...device, state, stateReason: reason, updatedAt: now };
    }, entry);
  }

  deleteDevice(uuid: string, entry: AuditEntry): Promise<void> {
    return this.write(async (tx) => {
      const device = await devices.authView(tx, uuid);
      if (!device) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      const now = this.now();
      // What stays: the UUID's tombstone, and its certificates on the retired list.
      await devices.leaveTombstone(tx, device, now);
      for (const fingerprint of [device.certificateFingerprint, device.previousCertificateFingerprint]) {
        if (fingerprint !== null) await devices.retireCertificate(tx, uuid, fingerprint, now);
      }
      await devices.delete(tx, uuid);
    }, entry);
  }

  getDeviceTombstone(uuid: string): Promise<DeviceTombstone | null> {
    return devices.tombstone(this.database, uuid);
  }

  rotateDeviceCertificate(uuid: string, rotation: DeviceCertificateRotation, entry: AuditEntry): Promise<void> {
    return this.write(async (tx) => {
      const now = this.now();
      const rotated = await this.unique(
        () => devices.rotate(tx, uuid, rotation, now),
        () => conflict('certificate_in_use', 'this certificate is already enrolled for another device'),
      );
      if (!rotated) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      for (const fingerprint of rotation.retire) await devices.retireCertificate(tx, uuid, fingerprint, now);
      // The rotation used up whatever next key the device had announced.
      await devices.clearNextKey(tx, uuid);
    }, entry);
  }

  putNextKey(key: AnnouncedNextKey, entry: AuditEntry): Promise<void> {
    return this.write((tx) => devices.putNextKey(tx, key), entry);
  }

  getNextKey(uuid: string): Promise<AnnouncedNextKey | null> {
    return devices.nextKey(this.database, uuid);
  }

  clearNextKey(uuid: string, entry: AuditEntry): Promise<boolean> {
    return this.write(
      (tx) => devices.clearNextKey(tx, uuid),
      (cleared) => (cleared ? entry : null),
    );
  }

  retirePreviousCertificate(uuid: string, fingerprint: string, entry: AuditEntry): Promise<boolean> {
    return this.write(
      async (tx) => {
        if (!(await devices.clearPrevious(tx, uuid, fingerprint))) return false;
        await devices.retireCertificate(tx, uuid, fingerprint, this.now());
        return true;
      },
      (retired) => (retired ? entry : null),
    );
  }

  isCertificateRetired(fingerprint: string): Promise<boolean> {
    return devices.isRetired(this.database, fingerprint);
  }

  countDevicesByState(): Promise<Record<DeviceState, number>> {
    return devices.countByState(this.database);
  }

  countDevicesExpiring(from: number, until: number): Promise<Record<string, number>> {
    return devices.countExpiring(this.database, from, until);
  }

  // ---- tokens ----------------------------------------------------------------------------

  insertToken(token: NewTokenRecord, entry: AuditEntry | null): Promise<void> {
    return this.commits.enqueue({ token, audit: entry, at: this.now() });
  }

  findTokenBySecretHash(secretHash: string): Promise<TokenAuthView | null> {
    return tokens.findBySecretHash(this.database, secretHash);
  }

  getToken(id: string): Promise<TokenRecord | null> {
    return tokens.get(this.database, id);
  }

  listTokens(factoryId: string, options: { kind?: TokenKind } = {}): Promise<TokenRecord[]> {
    return tokens.list(this.database, factoryId, options.kind);
  }

  revokeToken(id: string, entry: AuditEntry): Promise<RevokedDescendant[]> {
    return this.write(async (tx) => {
      const now = this.now();
      if (!(await tokens.revoke(tx, id, now))) throw notFound('token_not_found', `no active token with id ${id}`);
      await audit.append(tx, entry, now);
      // Tokens created from this one die with it, each with its own record.
      const descendants = await tokens.liveDescendants(tx, id);
      for (const d of descendants) {
        await tokens.revoke(tx, d.id, now);
        await audit.append(tx, { ...entry, factoryId: d.factoryId, target: d.id, details: { ...entry.details, revokedWith: id } }, now);
      }
      return descendants;
    });
  }

  purgeExpiredTokens(now: number): Promise<number> {
    return this.write((tx) => tokens.purgeExpired(tx, now));
  }

  insertOperatorToken(token: OperatorToken & { secretHash: string }, entry: AuditEntry): Promise<void> {
    return this.write((tx) => tokens.insertOperator(tx, token), entry);
  }

  findOperatorTokenBySecretHash(secretHash: string): Promise<OperatorToken | null> {
    return tokens.findOperatorBySecretHash(this.database, secretHash);
  }

  listOperatorTokens(): Promise<OperatorToken[]> {
    return tokens.listOperator(this.database);
  }

  revokeOperatorToken(id: string, entry: AuditEntry): Promise<void> {
    return this.write(async (tx) => {
      if (!(await tokens.revokeOperator(tx, id, this.now()))) throw notFound('token_not_found', `no active operator token with id ${id}`);
    }, entry);
  }

  // ---- console sign-in codes -------------------------------------------------------------

  addConsoleSigninCode(code: { codeHash: string; createdAt: number; expiresAt: number }, entry: AuditEntry): Promise<void> {
    return this.write((tx) => consoleCodes.add(tx, code), entry);
  }

  consumeConsoleSigninCode(codeHash: string, now: number): Promise<boolean> {
    return this.write((tx) => consoleCodes.consume(tx, codeHash, now));
  }

  // ---- audit -----------------------------------------------------------------------------

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.commits.enqueue({ token: null, audit: entry, at: this.now() });
  }

  listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return audit.list(this.database, filter);
  }

  purgeAuditLog(
    cutoff: number,
    maxRows: number,
    entry: AuditEntry,
    archive?: (records: AuditRecord[]) => void,
  ): Promise<{ deleted: number; cutoff: number; more: boolean }> {
    const limit = Math.max(1, Math.trunc(maxRows));
    return this.write(
      async (tx) => {
        const inForce = await audit.advanceCutoff(tx, Math.trunc(cutoff));
        return { ...(await audit.deleteOldest(tx, inForce, limit, archive)), cutoff: inForce };
      },
      (r) => (r.deleted > 0 ? { ...entry, details: { ...entry.details, deleted: r.deleted, cutoff: new Date(r.cutoff).toISOString() } } : null),
    );
  }

  auditRetentionCutoff(): Promise<number> {
    return audit.cutoff(this.database);
  }

  // ---- signing keys ----------------------------------------------------------------------

  addSigningKey(key: SigningKeyRecord, entry: AuditEntry): Promise<void> {
    return this.write(async (tx) => {
      await this.unique(() => signingKeys.insert(tx, key), () => conflict('signing_key_exists', `signing key ${key.kid} already exists`));
      await changes.bump(this.database, tx, 'signing_keys');
    }, entry);
  }

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return signingKeys.list(this.database);
  }

  transitionSigningKeys(transitions: readonly SigningKeyTransition[], entry: AuditEntry): Promise<void> {
    const changed = () => conflict('signing_keys_changed', 'the signing keys were changed meanwhile; look at them again and retry');
    return this.write(async (tx) => {
      for (const t of transitions) {
        const applied = await this.unique(() => signingKeys.setStatus(tx, t.kid, t.from, t.to, t.activatedAt ?? null), changed);
        if (!applied) throw changed();
      }
      await changes.bump(this.database, tx, 'signing_keys');
    }, entry);
  }

  // ---- sealed private keys ---------------------------------------------------------------

  putSealedKey(key: SealedKeyRecord): Promise<void> {
    return this.write((tx) => this.unique(() => storedKeys.insert(tx, key), () => conflict('key_exists', `key ${key.ref} already exists`)));
  }

  getSealedKey(ref: string): Promise<SealedKeyRecord | null> {
    return storedKeys.get(this.database, ref);
  }

  deleteSealedKey(ref: string): Promise<void> {
    return this.write((tx) => storedKeys.delete(tx, ref));
  }

  sealedKeysNotUnder(kekId: string, limit: number): Promise<SealedKeyRecord[]> {
    return storedKeys.sealedWithOther(this.database, kekId, limit);
  }

  resealKey(ref: string, previousSealed: string, kekId: string, sealed: string, entry: AuditEntry): Promise<boolean> {
    return this.write(
      (tx) => storedKeys.reseal(tx, ref, previousSealed, kekId, sealed),
      (done) => (done ? entry : null),
    );
  }

  countSealedKeys(): Promise<Record<string, number>> {
    return storedKeys.count(this.database);
  }

  // ---- maintenance, change detection and health ------------------------------------------

  async runExclusive(job: string, intervalMs: number, fn: (claimedAt: number) => Promise<void>): Promise<boolean> {
    const ran = await this.database.ifUnlocked(`tollgate.maintenance.${job}`, async () => {
      const now = this.now();
      // A run that outlives its interval keeps the lease (PostgreSQL's lock ends with the process).
      const leaseUntil = now + Math.max(intervalMs, 1000);
      if (!(await this.write((tx) => maintenance.claim(tx, job, now, intervalMs, leaseUntil - now)))) return false;
      try {
        await fn(now);
      } finally {
        await this.write((tx) => maintenance.release(tx, job, leaseUntil));
      }
      return true;
    });
    return ran === true;
  }

  changeVersion(topic: ChangeTopic): Promise<number> {
    return changes.version(this.database, topic);
  }

  subscribeChanges(onChange: (topic: ChangeTopic) => void, onReconnect: () => void): (() => void) | null {
    return this.database.subscribe(onChange, onReconnect);
  }

  /** Readiness: the engine's own faults (SQLite: its file and disk), then a round trip. */
  ping(): Promise<void> {
    return this.database.ping();
  }

  schemaVersion(): Promise<number> {
    return this.database.schemaVersion();
  }

  close(): Promise<void> {
    // Writes already asked for are committed (or refused) before the database is let go.
    this.closing ??= this.commits.flush().then(() => this.database.close());
    return this.closing;
  }
}
