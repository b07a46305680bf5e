/**
 * The store: every durable fact Tollgate keeps, behind one interface.
 *
 * Nothing outside `shared/store/` sees SQL. Every mutating method takes the audit entry that
 * describes it and writes both in one transaction, so the audit trail can never disagree with
 * the state it describes. Two engines implement it with the same repositories: SQLite (embedded,
 * one host) and PostgreSQL (several instances); test/conformance/ holds them to the same behaviour.
 * The store keeps facts; what a change implies (which tokens die, which key steps down) is the
 * authority's decision, handed in as explicit effects.
 */

export type DeviceState = 'active' | 'pending' | 'disabled' | 'revoked';
export type CaState = 'active' | 'disabled' | 'revoked';
export type CaKind = 'online' | 'external';
export type TokenKind = 'device' | 'api' | 'refresh';

export interface Factory {
  id: string;
  name: string;
  createdAt: number;
}

export interface DeviceCa {
  id: string;
  factoryId: string;
  kind: CaKind;
  /** PEM of the CA certificate. */
  certificatePem: string;
  fingerprint256: string;
  subjectCommonName: string;
  notAfter: number;
  state: CaState;
  stateReason: string | null;
  /** Online CAs only: where the key store keeps the private key. Never the key itself. */
  keyRef: string | null;
  createdAt: number;
}

export interface Device {
  uuid: string;
  factoryId: string;
  caId: string;
  name: string | null;
  state: DeviceState;
  stateReason: string | null;
  isTest: boolean;
  certificatePem: string;
  certificateFingerprint: string;
  publicKeyFingerprint: string;
  notAfter: number;
  createdAt: number;
  updatedAt: number;
}

/** A device together with what every authentication decision about it needs. */
export interface DeviceAuthView extends Device {
  factoryName: string;
  caState: CaState;
  /** The certificate a rotation replaced, still accepted until the device first uses the new one. */
  previousCertificateFingerprint: string | null;
}

/** What stays of a deleted device (see deleteDevice). */
export interface DeviceTombstone {
  uuid: string;
  factoryId: string;
  factoryName: string;
  /** It was a test device (at any of its deletions). */
  wasTest: boolean;
  /** It was revoked (before any of its deletions): the UUID is never used again. */
  revoked: boolean;
  deletedAt: number;
}

/** What a rotation writes: the new certificate, and what happens to the ones before it. */
export interface DeviceCertificateRotation {
  certificatePem: string;
  certificateFingerprint: string;
  publicKeyFingerprint: string;
  notAfter: number;
  /** Stays accepted until the device first presents the new certificate. */
  previousCertificateFingerprint: string;
  /** Refused from now on (e.g. an earlier rotation's certificate the device never picked up). */
  retire: string[];
}

/** A public key a device announced for its next certificate. */
export interface AnnouncedNextKey {
  deviceUuid: string;
  /** SHA-256 hex of the SubjectPublicKeyInfo DER, as publicKeyFingerprint computes it. */
  publicKeyFingerprint: string;
  announcedAt: number;
}

export type JitMode = 'off' | 'pending' | 'active';

/** Per-factory lifecycle settings; null fields fall back to the configuration (pki.*). */
export interface FactorySettings {
  factoryId: string;
  jitMode: JitMode;
  certMaxDays: number | null;
  testCertMaxHours: number | null;
  keyTypes: string[] | null;
  updatedAt: number;
}

/**
 * A stored bearer credential of any kind: a device token (`tgd_`, minted by the gateway), a factory
 * API token (`tga_`) or a refresh token (`tgr_`, issued by the realm). Only its hash is kept.
 */
export interface TokenRecord {
  id: string;
  kind: TokenKind;
  factoryId: string;
  /** Device tokens and device refresh tokens: the device they belong to (deleted with it). */
  deviceUuid: string | null;
  scopes: string[];
  description: string | null;
  /** Refresh tokens: the registry service they were issued for. */
  service: string | null;
  /** The JWT `sub` this token stands for; also the Basic username it must be presented with. */
  subject: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  /** The token that created this one (never outlived by it, revoked with it); null for the operator's. */
  parentId: string | null;
}

/** A token revoked with its ancestor (Store.revokeToken). */
export interface RevokedDescendant {
  id: string;
  factoryId: string;
}

/** An operator credential for the admin API (`tgo_`): every factory, and the operator's commands. */
export interface OperatorToken {
  id: string;
  description: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface NewTokenRecord extends Omit<TokenRecord, 'revokedAt' | 'parentId'> {
  parentId?: string | null;
  /** SHA-256 of the secret, hex. The secret itself is never stored. */
  secretHash: string;
}

/** A token looked up by its secret's hash, with the state of everything it depends on. */
export interface TokenAuthView extends TokenRecord {
  factoryName: string;
  deviceState: DeviceState | null;
  caState: CaState | null;
}

export type AuditOutcome = 'success' | 'denied';

export interface AuditEntry {
  /** Who acted: `device:<uuid>`, `token:<id>`, `operator` (local CLI), `system`. */
  actor: string;
  action: string;
  outcome: AuditOutcome;
  factoryId?: string | null;
  /** What was acted on: a device uuid, a token id, a CA id. */
  target?: string | null;
  reason?: string | null;
  /** Where the request came from (address), if it came over the network. */
  source?: string | null;
  /** Extra non-secret facts. */
  details?: Record<string, unknown> | null;
}

export interface AuditRecord extends AuditEntry {
  id: number;
  at: number;
}

export type SigningKeyStatus = 'trusted' | 'active' | 'retired';

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  certificatePem: string;
  keyRef: string;
  status: SigningKeyStatus;
  createdAt: number;
  activatedAt: number | null;
}

/** Topics whose change other processes must notice without a restart. */
export type ChangeTopic = 'device_cas' | 'signing_keys';

/** A change of one signing key's status, applied only if the key still has status `from`. */
export interface SigningKeyTransition {
  kid: string;
  from: SigningKeyStatus;
  to: SigningKeyStatus;
  /** Set when the key becomes active. */
  activatedAt?: number;
}

/** A private key as the database holds it: sealed with a key-encryption key (see shared/keys/). */
export interface SealedKeyRecord {
  ref: string;
  /** Which key-encryption key sealed it (a fingerprint, never the key). */
  kekId: string;
  sealed: string;
  createdAt: number;
}

export interface ListOptions {
  limit?: number;
  /** Opaque cursor: the last key of the previous page. */
  after?: string;
}

export interface AuditFilter extends ListOptions {
  factoryId?: string;
  target?: string;
  action?: string;
  actor?: string;
  outcome?: AuditOutcome;
  /** Records at or after this time (ms since the epoch) ... */
  since?: number;
  /** ... and before this one. */
  until?: number;
  /** Oldest first (default), or newest first; `after` is then the id the page continues below. */
  order?: 'asc' | 'desc';
}

export interface DeviceListOptions extends ListOptions {
  state?: DeviceState;
  /** A UUID prefix or a part of the name. */
  search?: string;
  test?: boolean;
}

export interface Store {
  createFactory(factory: Factory, audit: AuditEntry): Promise<Factory>;
  getFactory(id: string): Promise<Factory | null>;
  getFactoryByName(name: string): Promise<Factory | null>;
  listFactories(): Promise<Factory[]>;

  addDeviceCa(ca: DeviceCa, audit: AuditEntry): Promise<DeviceCa>;
  getDeviceCa(id: string): Promise<DeviceCa | null>;
  listDeviceCas(filter?: { factoryId?: string }): Promise<DeviceCa[]>;
  /** Changes the state; with `revokeDeviceTokens`, every token of every device under the CA is revoked too. */
  setDeviceCaState(id: string, state: CaState, reason: string | null, audit: AuditEntry, effects: { revokeDeviceTokens: boolean }): Promise<DeviceCa>;

  insertDevice(device: Device, audit: AuditEntry): Promise<Device>;
  /** Inserts every device with its audit record in one transaction: all of them, or none. */
  insertDevices(entries: { device: Device; audit: AuditEntry }[]): Promise<Device[]>;
  getDevice(uuid: string): Promise<DeviceAuthView | null>;
  listDevices(factoryId: string, options?: DeviceListOptions): Promise<Device[]>;
  /** How many devices of the factory each CA issued, by state. */
  countDevicesByCa(factoryId: string): Promise<Map<string, Record<DeviceState, number>>>;
  /**
   * Changes the state; with `revokeTokens`, every token of the device is revoked in the same
   * transaction (kept until it expires, so a device presenting one hears why it was refused).
   */
  setDeviceState(uuid: string, state: DeviceState, reason: string | null, audit: AuditEntry, effects: { revokeTokens: boolean }): Promise<Device>;
  /**
   * Deletes the device and leaves its tombstone (getDeviceTombstone) and its current and previous
   * certificates on the retired list, in one transaction.
   */
  deleteDevice(uuid: string, audit: AuditEntry): Promise<void>;
  getDeviceTombstone(uuid: string): Promise<DeviceTombstone | null>;
  /** Installs a rotated certificate; fails with certificate_in_use if another device has it. */
  rotateDeviceCertificate(uuid: string, rotation: DeviceCertificateRotation, audit: AuditEntry): Promise<void>;
  /**
   * Moves the device's previous certificate to the retired list, if it still is `fingerprint`.
   * Returns false when another request already did (so the transition is audited once).
   */
  retirePreviousCertificate(uuid: string, fingerprint: string, audit: AuditEntry): Promise<boolean>;
  isCertificateRetired(fingerprint: string): Promise<boolean>;
  /** Records (or replaces) the device's announced next key. A rotation clears it. */
  putNextKey(key: AnnouncedNextKey, audit: AuditEntry): Promise<void>;
  getNextKey(uuid: string): Promise<AnnouncedNextKey | null>;
  /** Removes the announcement, if any; `audit` is recorded only when there was one. */
  clearNextKey(uuid: string, audit: AuditEntry): Promise<boolean>;

  /** The factory's settings, or null when none were ever set (every default applies). */
  getFactorySettings(factoryId: string): Promise<FactorySettings | null>;
  putFactorySettings(settings: FactorySettings, audit: AuditEntry): Promise<FactorySettings>;

  addCaRegistrationCode(code: { codeHash: string; factoryId: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void>;
  /** Deletes the code if it is the factory's and unexpired at `now`; true if it was. Single use. */
  consumeCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean>;
  /** True if the factory has this unexpired code (without using it). */
  hasCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean>;
  /** How many devices are in each state, all factories together (one aggregate query; for metrics). */
  countDevicesByState(): Promise<Record<DeviceState, number>>;
  /** Active devices whose certificate expires after `from` and by `until`, by factory id (for metrics). */
  countDevicesExpiring(from: number, until: number): Promise<Record<string, number>>;

  insertToken(token: NewTokenRecord, audit: AuditEntry | null): Promise<void>;
  findTokenBySecretHash(secretHash: string): Promise<TokenAuthView | null>;
  getToken(id: string): Promise<TokenRecord | null>;
  listTokens(factoryId: string, options?: { kind?: TokenKind }): Promise<TokenRecord[]>;
  /**
   * Revokes the token and every token descended from it (parentId, transitively) that is not
   * revoked yet, in one transaction; `audit` is recorded for the token, and for each descendant a
   * copy naming it, with `revokedWith: id` in its details. Returns the descendants revoked.
   */
  revokeToken(id: string, audit: AuditEntry): Promise<RevokedDescendant[]>;
  /** Deletes tokens whose expiry is before `now`; returns how many. */
  purgeExpiredTokens(now: number): Promise<number>;

  /** A single-use code that signs the console in as the operator (`tollgate console`); stored hashed. */
  addConsoleSigninCode(code: { codeHash: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void>;
  /** Deletes the code if it is unexpired at `now`; true if it was. */
  consumeConsoleSigninCode(codeHash: string, now: number): Promise<boolean>;

  appendAudit(entry: AuditEntry): Promise<void>;
  listAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * Audit retention, one bounded step: moves the retention cutoff forward to `cutoff` (ms since the
   * epoch; never back) and deletes at most `maxRows` of the oldest records written before the
   * cutoff in force. When it deleted any, `audit` is recorded in the same transaction with the
   * count and the cutoff added to its details. `more` is true when older records may remain.
   * `archive`, when given, is handed the records before they are deleted, in the same transaction:
   * if it throws, nothing is deleted.
   */
  purgeAuditLog(
    cutoff: number,
    maxRows: number,
    audit: AuditEntry,
    archive?: (records: AuditRecord[]) => void,
  ): Promise<{ deleted: number; cutoff: number; more: boolean }>;
  /** The retention cutoff in force: records written before it may have been deleted. */
  auditRetentionCutoff(): Promise<number>;

  addSigningKey(key: SigningKeyRecord, audit: AuditEntry): Promise<void>;
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /**
   * Applies every transition in one transaction, or none: fails with signing_keys_changed when a
   * key no longer has the status the authority read (another process changed it meanwhile).
   */
  transitionSigningKeys(transitions: readonly SigningKeyTransition[], audit: AuditEntry): Promise<void>;

  insertOperatorToken(token: OperatorToken & { secretHash: string }, audit: AuditEntry): Promise<void>;
  findOperatorTokenBySecretHash(secretHash: string): Promise<OperatorToken | null>;
  listOperatorTokens(): Promise<OperatorToken[]>;
  revokeOperatorToken(id: string, audit: AuditEntry): Promise<void>;

  /** Stores a sealed private key; fails with key_exists when the reference is taken. */
  putSealedKey(key: SealedKeyRecord): Promise<void>;
  getSealedKey(ref: string): Promise<SealedKeyRecord | null>;
  deleteSealedKey(ref: string): Promise<void>;
  /** Up to `limit` keys sealed with another key-encryption key than `kekId`. */
  sealedKeysNotUnder(kekId: string, limit: number): Promise<SealedKeyRecord[]>;
  /** Replaces a key's seal if it is still `previousSealed`; false when another process did first. */
  resealKey(ref: string, previousSealed: string, kekId: string, sealed: string, audit: AuditEntry): Promise<boolean>;
  /** How many sealed keys each key-encryption key holds. */
  countSealedKeys(): Promise<Record<string, number>>;

  /**
   * Runs `fn` as the one run of `job` this interval, if it is due and no instance holds it; resolves
   * to whether it ran. `fn` is told the time the run was claimed at (runs are an interval apart by it). On PostgreSQL an advisory lock also keeps a slow run from ever overlapping.
   */
  runExclusive(job: string, intervalMs: number, fn: (claimedAt: number) => Promise<void>): Promise<boolean>;

  /** A number that grows whenever `topic` changes, in any process sharing the store. */
  changeVersion(topic: ChangeTopic): Promise<number>;
  /**
   * Calls `onChange` as soon as another process changes `topic`s, `onReconnect` after the feed was
   * interrupted. Null when the engine has no feed: followers poll changeVersion.
   */
  subscribeChanges(onChange: (topic: ChangeTopic) => void, onReconnect: () => void): (() => void) | null;
  /** Which engine this is. */
  readonly engine: 'sqlite' | 'postgres';
  /** Resolves once connected and migrated (a networked engine connects in the background). */
  ready(): Promise<void>;
  /**
   * Readiness probe of the store (used by /readyz): throws an `unavailable` TollgateError naming
   * the fault (`store_file_missing`, `store_file_replaced`, `store_full` on SQLite,
   * `store_unreachable` on PostgreSQL), or the store's own error.
   */
  ping(): Promise<void>;
  /** Commits what is queued, then lets the database go. */
  close(): Promise<void>;
}
