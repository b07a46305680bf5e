import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TollgateError, conflict, notFound } from '../errors.js';
import { isDiskFull, StoreFileHealth } from './file-health.js';
import { MIGRATIONS } from './migrations.js';
import type {
  AnnouncedNextKey,
  TokenRecord,
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
  Factory,
  FactorySettings,
  JitMode,
  ListOptions,
  NewTokenRecord,
  SigningKeyRecord,
  Store,
  TokenAuthView,
  TokenKind,
} from './types.js';

type Row = Record<string, unknown>;

const str = (v: unknown): string => v as string;
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toFactory(r: Row): Factory {
  return { id: str(r.id), name: str(r.name), createdAt: num(r.created_at) };
}

function toCa(r: Row): DeviceCa {
  return {
    id: str(r.id),
    factoryId: str(r.factory_id),
    kind: str(r.kind) as DeviceCa['kind'],
    certificatePem: str(r.certificate_pem),
    fingerprint256: str(r.fingerprint256),
    subjectCommonName: str(r.subject_cn),
    notAfter: num(r.not_after),
    state: str(r.state) as CaState,
    stateReason: strOrNull(r.state_reason),
    keyRef: strOrNull(r.key_ref),
    createdAt: num(r.created_at),
  };
}

function toDevice(r: Row): Device {
  return {
    uuid: str(r.uuid),
    factoryId: str(r.factory_id),
    caId: str(r.ca_id),
    name: strOrNull(r.name),
    state: str(r.state) as DeviceState,
    stateReason: strOrNull(r.state_reason),
    isTest: num(r.is_test) === 1,
    certificatePem: str(r.certificate_pem),
    certificateFingerprint: str(r.certificate_fingerprint),
    publicKeyFingerprint: str(r.public_key_fingerprint),
    notAfter: num(r.not_after),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toToken(r: Row): TokenRecord {
  return {
    id: str(r.id),
    kind: str(r.kind) as TokenKind,
    factoryId: str(r.factory_id),
    deviceUuid: strOrNull(r.device_uuid),
    scopes: JSON.parse(str(r.scopes)) as string[],
    description: strOrNull(r.description),
    service: strOrNull(r.service),
    subject: str(r.subject),
    createdAt: num(r.created_at),
    expiresAt: numOrNull(r.expires_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

function toSigningKey(r: Row): SigningKeyRecord {
  return {
    kid: str(r.kid),
    alg: str(r.alg),
    certificatePem: str(r.certificate_pem),
    keyRef: str(r.key_ref),
    status: str(r.status) as SigningKeyRecord['status'],
    createdAt: num(r.created_at),
    activatedAt: numOrNull(r.activated_at),
  };
}

function toAudit(r: Row): AuditRecord {
  return {
    id: num(r.id),
    at: num(r.at),
    actor: str(r.actor),
    action: str(r.action),
    outcome: str(r.outcome) as AuditRecord['outcome'],
    factoryId: strOrNull(r.factory_id),
    target: strOrNull(r.target),
    reason: strOrNull(r.reason),
    source: strOrNull(r.source),
    details: r.details ? (JSON.parse(str(r.details)) as Record<string, unknown>) : null,
  };
}

const DEFAULT_PAGE = 100;
// A page of at most 1000, plus one row that tells the caller whether another page follows.
const MAX_PAGE = 1001;

function pageSize(options?: ListOptions): number {
  const n = options?.limit ?? DEFAULT_PAGE;
  return Math.max(1, Math.min(MAX_PAGE, Math.trunc(n)));
}

/** True for the SQLite errors that mean "another process holds the lock for too long". */
function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT';
}

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export interface SqliteStoreOptions {
  /** How long a writer waits for another process's transaction before giving up (ms). */
  busyTimeoutMs?: number;
}

/** A token row and/or an audit row waiting for the next group commit, with the caller to tell. */
interface PendingWrite {
  token: NewTokenRecord | null;
  audit: AuditEntry | null;
  /** When the caller asked: the audit row's time, whatever batch it lands in. */
  at: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** The error a lock time-out becomes for callers: a 503-kind refusal, never a 500. */
function storeBusy(): TollgateError {
  return new TollgateError('unavailable', 'store_busy', 'the store is busy; retry shortly');
}

/**
 * The embedded store: one SQLite file in WAL mode, shared safely by the gateway, authsvc and the
 * CLI running as separate processes. Writes use IMMEDIATE transactions so that a writer takes the
 * lock up front and waits on busy_timeout, instead of failing half way on a lock upgrade.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  /**
   * Group commit: token inserts and audit appends (the per-request writes of the gateway and the
   * realm) made in one event-loop turn share one IMMEDIATE transaction, flushed on setImmediate.
   * Each caller's promise settles only after the commit that holds its rows, so no answer goes out
   * before its audit record is in the database. Any other write flushes the queue first, so writes
   * reach the file in the order they were asked for.
   */
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** The open file still at its path, and its disk not full (see file-health.ts). */
  private readonly health: StoreFileHealth;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    if (path !== ':memory:') {
      const dir = dirname(path);
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const fresh = path === ':memory:' || !existsSync(path);
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 10_000 });
    if (fresh && path !== ':memory:') chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    // SQLite's default page cache is about 2 MiB. At fleet scale (millions of devices and tokens)
    // the interior pages of the token-hash and device indexes alone exceed it, and every lookup
    // then re-reads them from the OS. 64 MiB per connection keeps them resident.
    this.db.pragma('cache_size = -65536');
    this.migrate();
    this.health = new StoreFileHealth(path);
  }

  /** Schema version after migrations, for diagnostics and tests. */
  schemaVersion(): number {
    const r = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as Row;
    return num(r.v);
  }

  /** Runs `PRAGMA integrity_check`; returns 'ok' when the file is sound. */
  integrityCheck(): string {
    const rows = this.db.pragma('integrity_check') as Row[];
    return rows.map((r) => str(r.integrity_check)).join('; ');
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS) {
      this.db
        .transaction(() => {
          const done = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
          if (done) return;
          this.db.exec(m.sql);
          this.db
            .prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` in an IMMEDIATE transaction, mapping lock time-outs to a 503-kind error. */
  private write<T>(fn: () => T): T {
    if (this.pending.length > 0) this.flushPending();
    return this.transact(fn);
  }

  private transact<T>(fn: () => T): T {
    // Never write into a file that is no longer the one at the store's path: it would be lost.
    this.health.assertAttached();
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (e) {
      if (isBusy(e)) throw storeBusy();
      if (isDiskFull(e)) throw this.health.noteFull();
      throw e;
    }
    this.health.noteWritten();
    return result;
  }

  /** Queues a token row and/or an audit row for the next group commit. */
  private enqueue(token: NewTokenRecord | null, audit: AuditEntry | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ token, audit, at: Date.now(), resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate rather than a microtask: the batch then takes every request read in the same
        // poll phase, where a microtask would commit after each request's own synchronous chain.
        setImmediate(() => {
          this.flushScheduled = false;
          this.flushPending();
        });
      }
    });
  }

  /**
   * Commits every queued write in one transaction and settles their callers. If the batch fails,
   * each entry is retried in a transaction of its own, so one bad entry fails only its own caller;
   * a lock time-out fails the whole batch at once (each retry would wait as long again).
   */
  private flushPending(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.transact(() => {
        for (const w of batch) this.applyPending(w);
      });
    } catch (e) {
      // A lock time-out, a full disk or a lost file fails every entry alike: no retry one by one.
      if (batch.length === 1 || isBusy(e) || (e instanceof TollgateError && e.kind === 'unavailable')) {
        for (const w of batch) w.reject(e);
        return;
      }
      for (const w of batch) {
        try {
          this.transact(() => this.applyPending(w));
        } catch (one) {
          w.reject(one);
          continue;
        }
        w.resolve();
      }
      return;
    }
    for (const w of batch) w.resolve();
  }

  private applyPending(w: PendingWrite): void {
    if (w.token) this.insertTokenRow(w.token);
    if (w.audit) this.audit(w.audit, w.at);
  }

  private read<T>(fn: () => T): T {
    this.health.assertNotDetached();
    try {
      return fn();
    } catch (e) {
      if (isBusy(e)) throw storeBusy();
      throw e;
    }
  }

  private audit(entry: AuditEntry, at: number = Date.now()): void {
    this.stmt(
      `INSERT INTO audit_log(at, actor, action, outcome, factory_id, target, reason, source, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      at,
      entry.actor,
      entry.action,
      entry.outcome,
      entry.factoryId ?? null,
      entry.target ?? null,
      entry.reason ?? null,
      entry.source ?? null,
      entry.details ? JSON.stringify(entry.details) : null,
    );
  }

  private bump(topic: ChangeTopic): void {
    this.stmt('UPDATE change_versions SET version = version + 1 WHERE topic = ?').run(topic);
  }

  // ---- factories -------------------------------------------------------------------------

  async createFactory(factory: Factory, audit: AuditEntry): Promise<Factory> {
    return this.write(() => {
      try {
        this.stmt('INSERT INTO factories(id, name, created_at) VALUES (?, ?, ?)').run(
          factory.id,
          factory.name,
          factory.createdAt,
        );
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('factory_exists', `a factory named "${factory.name}" already exists`);
        throw e;
      }
      this.audit(audit);
      return factory;
    });
  }

  async getFactory(id: string): Promise<Factory | null> {
    const r = this.read(() => this.stmt('SELECT * FROM factories WHERE id = ?').get(id) as Row | undefined);
    return r ? toFactory(r) : null;
  }

  async getFactoryByName(name: string): Promise<Factory | null> {
    const r = this.read(() => this.stmt('SELECT * FROM factories WHERE name = ?').get(name) as Row | undefined);
    return r ? toFactory(r) : null;
  }

  async listFactories(): Promise<Factory[]> {
    return this.read(() => (this.stmt('SELECT * FROM factories ORDER BY name').all() as Row[]).map(toFactory));
  }

  // ---- device CAs ------------------------------------------------------------------------

  async addDeviceCa(ca: DeviceCa, audit: AuditEntry): Promise<DeviceCa> {
    return this.write(() => {
      try {
        this.stmt(
          `INSERT INTO device_cas(id, factory_id, kind, certificate_pem, fingerprint256, subject_cn, not_after,
                                  state, state_reason, key_ref, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          ca.id,
          ca.factoryId,
          ca.kind,
          ca.certificatePem,
          ca.fingerprint256,
          ca.subjectCommonName,
          ca.notAfter,
          ca.state,
          ca.stateReason,
          ca.keyRef,
          ca.createdAt,
        );
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('ca_exists', 'this CA certificate is already registered');
        throw e;
      }
      this.bump('device_cas');
      this.audit(audit);
      return ca;
    });
  }

  async getDeviceCa(id: string): Promise<DeviceCa | null> {
    const r = this.read(() => this.stmt('SELECT * FROM device_cas WHERE id = ?').get(id) as Row | undefined);
    return r ? toCa(r) : null;
  }

  async listDeviceCas(filter: { factoryId?: string } = {}): Promise<DeviceCa[]> {
    return this.read(() => {
      const rows =
        filter.factoryId === undefined
          ? (this.stmt('SELECT * FROM device_cas ORDER BY created_at, id').all() as Row[])
          : (this.stmt('SELECT * FROM device_cas WHERE factory_id = ? ORDER BY created_at, id').all(
              filter.factoryId,
            ) as Row[]);
      return rows.map(toCa);
    });
  }

  async setDeviceCaState(id: string, state: CaState, reason: string | null, audit: AuditEntry): Promise<DeviceCa> {
    return this.write(() => {
      const r = this.stmt('SELECT * FROM device_cas WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw notFound('ca_not_found', `no device CA with id ${id}`);
      this.stmt('UPDATE device_cas SET state = ?, state_reason = ? WHERE id = ?').run(state, reason, id);
      if (state === 'revoked') {
        // A revoked CA cuts off every device under it at once: their tokens die with it.
        this.stmt('DELETE FROM api_tokens WHERE device_uuid IN (SELECT uuid FROM devices WHERE ca_id = ?)').run(id);
      }
      this.bump('device_cas');
      this.audit(audit);
      return toCa({ ...r, state, state_reason: reason });
    });
  }

  // ---- devices ---------------------------------------------------------------------------

  async insertDevice(device: Device, audit: AuditEntry): Promise<Device> {
    return this.write(() => {
      this.insertDeviceRow(device);
      this.audit(audit);
      return device;
    });
  }

  async insertDevices(entries: { device: Device; audit: AuditEntry }[]): Promise<Device[]> {
    // One transaction: a refusal of any row (a UUID enrolled meanwhile) rolls back every row.
    return this.write(() =>
      entries.map(({ device, audit }) => {
        this.insertDeviceRow(device);
        this.audit(audit);
        return device;
      }),
    );
  }

  private insertDeviceRow(device: Device): void {
    try {
      this.stmt(
        `INSERT INTO devices(uuid, factory_id, ca_id, name, state, state_reason, is_test, certificate_pem,
                             certificate_fingerprint, public_key_fingerprint, not_after, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        device.uuid,
        device.factoryId,
        device.caId,
        device.name,
        device.state,
        device.stateReason,
        device.isTest ? 1 : 0,
        device.certificatePem,
        device.certificateFingerprint,
        device.publicKeyFingerprint,
        device.notAfter,
        device.createdAt,
        device.updatedAt,
      );
    } catch (e) {
      if (isUniqueViolation(e)) {
        const existing = this.stmt('SELECT 1 FROM devices WHERE uuid = ?').get(device.uuid);
        if (existing) throw conflict('device_exists', `a device with UUID ${device.uuid} is already enrolled`);
        throw conflict('certificate_in_use', 'this certificate is already enrolled for another device');
      }
      throw e;
    }
  }

  async getDevice(uuid: string): Promise<DeviceAuthView | null> {
    const r = this.read(
      () =>
        this.stmt(
          `SELECT d.*, f.name AS factory_name, c.state AS ca_state
             FROM devices d JOIN factories f ON f.id = d.factory_id JOIN device_cas c ON c.id = d.ca_id
            WHERE d.uuid = ?`,
        ).get(uuid) as Row | undefined,
    );
    if (!r) return null;
    return {
      ...toDevice(r),
      factoryName: str(r.factory_name),
      caState: str(r.ca_state) as CaState,
      previousCertificateFingerprint: strOrNull(r.previous_certificate_fingerprint),
    };
  }

  async listDevices(factoryId: string, options: DeviceListOptions = {}): Promise<Device[]> {
    const limit = pageSize(options);
    const search = options.search === undefined || options.search === '' ? null : options.search;
    // A UUID prefix or a part of the name; LIKE wildcards in the search text match themselves.
    const like = search === null ? null : search.replace(/[\\%_]/g, (c) => `\\${c}`);
    const test = options.test === undefined ? null : options.test ? 1 : 0;
    return this.read(() => {
      const rows = this.stmt(
        `SELECT * FROM devices WHERE factory_id = ? AND uuid > ? AND (? IS NULL OR state = ?) AND (? IS NULL OR is_test = ?)
            AND (? IS NULL OR uuid LIKE ? || '%' ESCAPE '\\' OR name LIKE '%' || ? || '%' ESCAPE '\\')
          ORDER BY uuid LIMIT ?`,
      ).all(factoryId, options.after ?? '', options.state ?? null, options.state ?? null, test, test, like, like, like, limit) as Row[];
      return rows.map(toDevice);
    });
  }

  async countDevicesByCa(factoryId: string): Promise<Map<string, Record<DeviceState, number>>> {
    const rows = this.read(
      () => this.stmt('SELECT ca_id, state, COUNT(*) AS n FROM devices WHERE factory_id = ? GROUP BY ca_id, state').all(factoryId) as Row[],
    );
    const counts = new Map<string, Record<DeviceState, number>>();
    for (const r of rows) {
      const perCa = counts.get(str(r.ca_id)) ?? { active: 0, pending: 0, disabled: 0, revoked: 0 };
      const state = str(r.state);
      if (state in perCa) perCa[state as DeviceState] = num(r.n);
      counts.set(str(r.ca_id), perCa);
    }
    return counts;
  }

  async setDeviceState(uuid: string, state: DeviceState, reason: string | null, audit: AuditEntry): Promise<Device> {
    return this.write(() => {
      const r = this.stmt('SELECT * FROM devices WHERE uuid = ?').get(uuid) as Row | undefined;
      if (!r) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      const now = Date.now();
      this.stmt('UPDATE devices SET state = ?, state_reason = ?, updated_at = ? WHERE uuid = ?').run(
        state,
        reason,
        now,
        uuid,
      );
      // Tokens of a device that is no longer active must not outlive that decision.
      if (state !== 'active') this.stmt('DELETE FROM api_tokens WHERE device_uuid = ?').run(uuid);
      this.audit(audit);
      return toDevice({ ...r, state, state_reason: reason, updated_at: now });
    });
  }

  async deleteDevice(uuid: string, audit: AuditEntry): Promise<void> {
    this.write(() => {
      const info = this.stmt('DELETE FROM devices WHERE uuid = ?').run(uuid);
      if (info.changes === 0) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      this.audit(audit);
    });
  }

  async rotateDeviceCertificate(uuid: string, rotation: DeviceCertificateRotation, audit: AuditEntry): Promise<void> {
    this.write(() => {
      const now = Date.now();
      try {
        const info = this.stmt(
          `UPDATE devices SET certificate_pem = ?, certificate_fingerprint = ?, public_key_fingerprint = ?, not_after = ?,
                              previous_certificate_fingerprint = ?, updated_at = ?
            WHERE uuid = ?`,
        ).run(
          rotation.certificatePem,
          rotation.certificateFingerprint,
          rotation.publicKeyFingerprint,
          rotation.notAfter,
          rotation.previousCertificateFingerprint,
          now,
          uuid,
        );
        if (info.changes === 0) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('certificate_in_use', 'this certificate is already enrolled for another device');
        throw e;
      }
      for (const fingerprint of rotation.retire) {
        this.stmt('INSERT OR IGNORE INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?)').run(fingerprint, uuid, now);
      }
      // The rotation used up whatever next key the device had announced.
      this.stmt('DELETE FROM device_next_keys WHERE device_uuid = ?').run(uuid);
      this.audit(audit);
    });
  }

  async retirePreviousCertificate(uuid: string, fingerprint: string, audit: AuditEntry): Promise<boolean> {
    return this.write(() => {
      const info = this.stmt(
        'UPDATE devices SET previous_certificate_fingerprint = NULL WHERE uuid = ? AND previous_certificate_fingerprint = ?',
      ).run(uuid, fingerprint);
      if (info.changes === 0) return false;
      this.stmt('INSERT OR IGNORE INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?)').run(fingerprint, uuid, Date.now());
      this.audit(audit);
      return true;
    });
  }

  async isCertificateRetired(fingerprint: string): Promise<boolean> {
    return this.read(() => this.stmt('SELECT 1 FROM retired_certificates WHERE fingerprint256 = ?').get(fingerprint) !== undefined);
  }

  async putNextKey(key: AnnouncedNextKey, audit: AuditEntry): Promise<void> {
    this.write(() => {
      this.stmt(
        `INSERT INTO device_next_keys(device_uuid, public_key_fingerprint, announced_at) VALUES (?, ?, ?)
         ON CONFLICT(device_uuid) DO UPDATE SET public_key_fingerprint = excluded.public_key_fingerprint, announced_at = excluded.announced_at`,
      ).run(key.deviceUuid, key.publicKeyFingerprint, key.announcedAt);
      this.audit(audit);
    });
  }

  async getNextKey(uuid: string): Promise<AnnouncedNextKey | null> {
    const r = this.read(() => this.stmt('SELECT * FROM device_next_keys WHERE device_uuid = ?').get(uuid) as Row | undefined);
    return r ? { deviceUuid: str(r.device_uuid), publicKeyFingerprint: str(r.public_key_fingerprint), announcedAt: num(r.announced_at) } : null;
  }

  async clearNextKey(uuid: string, audit: AuditEntry): Promise<boolean> {
    return this.write(() => {
      if (this.stmt('DELETE FROM device_next_keys WHERE device_uuid = ?').run(uuid).changes === 0) return false;
      this.audit(audit);
      return true;
    });
  }

  // ---- factory settings and CA registration codes ----------------------------------------

  async getFactorySettings(factoryId: string): Promise<FactorySettings | null> {
    const r = this.read(() => this.stmt('SELECT * FROM factory_settings WHERE factory_id = ?').get(factoryId) as Row | undefined);
    if (!r) return null;
    return {
      factoryId: str(r.factory_id),
      jitMode: str(r.jit_mode) as JitMode,
      certMaxDays: numOrNull(r.cert_max_days),
      testCertMaxHours: numOrNull(r.test_cert_max_hours),
      keyTypes: r.key_types === null || r.key_types === undefined ? null : (JSON.parse(str(r.key_types)) as string[]),
      updatedAt: num(r.updated_at),
    };
  }

  async putFactorySettings(settings: FactorySettings, audit: AuditEntry): Promise<FactorySettings> {
    return this.write(() => {
      this.stmt(
        `INSERT INTO factory_settings(factory_id, jit_mode, cert_max_days, test_cert_max_hours, key_types, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(factory_id) DO UPDATE SET jit_mode = excluded.jit_mode, cert_max_days = excluded.cert_max_days,
           test_cert_max_hours = excluded.test_cert_max_hours, key_types = excluded.key_types, updated_at = excluded.updated_at`,
      ).run(
        settings.factoryId,
        settings.jitMode,
        settings.certMaxDays,
        settings.testCertMaxHours,
        settings.keyTypes === null ? null : JSON.stringify(settings.keyTypes),
        settings.updatedAt,
      );
      this.audit(audit);
      return settings;
    });
  }

  async addCaRegistrationCode(code: { codeHash: string; factoryId: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void> {
    this.write(() => {
      // Expired codes are useless; clearing them here keeps the table from growing.
      this.stmt('DELETE FROM ca_registration_codes WHERE expires_at <= ?').run(code.createdAt);
      this.stmt('INSERT INTO ca_registration_codes(code_hash, factory_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(
        code.codeHash,
        code.factoryId,
        code.createdAt,
        code.expiresAt,
      );
      this.audit(audit);
    });
  }

  async consumeCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return this.write(
      () =>
        this.stmt('DELETE FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?').run(codeHash, factoryId, now)
          .changes === 1,
    );
  }

  async hasCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return this.read(
      () => this.stmt('SELECT 1 FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?').get(codeHash, factoryId, now) !== undefined,
    );
  }

  // ---- tokens ----------------------------------------------------------------------------

  async insertToken(token: NewTokenRecord, audit: AuditEntry | null): Promise<void> {
    return this.enqueue(token, audit);
  }

  private insertTokenRow(token: NewTokenRecord): void {
    this.stmt(
      `INSERT INTO api_tokens(id, secret_hash, kind, factory_id, device_uuid, scopes, description, service, subject,
                              created_at, expires_at, revoked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
    ).run(
      token.id,
      token.secretHash,
      token.kind,
      token.factoryId,
      token.deviceUuid,
      JSON.stringify(token.scopes),
      token.description,
      token.service,
      token.subject,
      token.createdAt,
      token.expiresAt,
    );
  }

  async findTokenBySecretHash(secretHash: string): Promise<TokenAuthView | null> {
    const r = this.read(
      () =>
        this.stmt(
          `SELECT t.*, f.name AS factory_name, d.state AS device_state, c.state AS ca_state
             FROM api_tokens t
             JOIN factories f ON f.id = t.factory_id
             LEFT JOIN devices d ON d.uuid = t.device_uuid
             LEFT JOIN device_cas c ON c.id = d.ca_id
            WHERE t.secret_hash = ?`,
        ).get(secretHash) as Row | undefined,
    );
    if (!r) return null;
    return {
      ...toToken(r),
      factoryName: str(r.factory_name),
      deviceState: strOrNull(r.device_state) as DeviceState | null,
      caState: strOrNull(r.ca_state) as CaState | null,
    };
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const r = this.read(() => this.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined);
    return r ? toToken(r) : null;
  }

  async listTokens(factoryId: string, options: { kind?: TokenKind } = {}): Promise<TokenRecord[]> {
    return this.read(() =>
      (
        this.stmt(
          'SELECT * FROM api_tokens WHERE factory_id = ? AND (? IS NULL OR kind = ?) ORDER BY created_at, id',
        ).all(factoryId, options.kind ?? null, options.kind ?? null) as Row[]
      ).map(toToken),
    );
  }

  async revokeToken(id: string, audit: AuditEntry): Promise<void> {
    this.write(() => {
      const info = this.stmt('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(
        Date.now(),
        id,
      );
      if (info.changes === 0) throw notFound('token_not_found', `no active token with id ${id}`);
      this.audit(audit);
    });
  }

  async countDevicesByState(): Promise<Record<DeviceState, number>> {
    const counts: Record<DeviceState, number> = { active: 0, pending: 0, disabled: 0, revoked: 0 };
    const rows = this.read(() => this.stmt('SELECT state, COUNT(*) AS n FROM devices GROUP BY state').all() as Row[]);
    for (const r of rows) {
      const state = str(r.state);
      if (state in counts) counts[state as DeviceState] = num(r.n);
    }
    return counts;
  }

  async countDevicesExpiring(from: number, until: number): Promise<Record<string, number>> {
    const rows = this.read(
      () =>
        this.stmt(
          "SELECT factory_id, COUNT(*) AS n FROM devices WHERE state = 'active' AND not_after > ? AND not_after <= ? GROUP BY factory_id",
        ).all(from, until) as Row[],
    );
    return Object.fromEntries(rows.map((r) => [str(r.factory_id), num(r.n)]));
  }

  async purgeExpiredTokens(now: number): Promise<number> {
    return this.write(
      () => this.stmt('DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?').run(now).changes,
    );
  }

  // ---- audit -----------------------------------------------------------------------------

  async appendAudit(entry: AuditEntry): Promise<void> {
    return this.enqueue(null, entry);
  }

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const limit = pageSize(filter);
    const desc = filter.order === 'desc';
    const cursor = filter.after === undefined ? null : Number.parseInt(filter.after, 10);
    const after = cursor === null || !Number.isFinite(cursor) ? (desc ? Number.MAX_SAFE_INTEGER : 0) : cursor;
    const v = (x: string | number | undefined) => x ?? null;
    return this.read(() =>
      (
        this.stmt(
          `SELECT * FROM audit_log
            WHERE ${desc ? 'id < ?' : 'id > ?'} AND (? IS NULL OR factory_id = ?) AND (? IS NULL OR target = ?) AND (? IS NULL OR action = ?)
              AND (? IS NULL OR actor = ?) AND (? IS NULL OR outcome = ?) AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?)
            ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`,
        ).all(
          after,
          ...[filter.factoryId, filter.target, filter.action, filter.actor, filter.outcome, filter.since, filter.until].flatMap((x) => [v(x), v(x)]),
          limit,
        ) as Row[]
      ).map(toAudit),
    );
  }

  async addConsoleSigninCode(code: { codeHash: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void> {
    this.write(() => {
      this.stmt('DELETE FROM console_signin_codes WHERE expires_at <= ?').run(code.createdAt);
      this.stmt('INSERT INTO console_signin_codes(code_hash, created_at, expires_at) VALUES (?, ?, ?)').run(code.codeHash, code.createdAt, code.expiresAt);
      this.audit(audit);
    });
  }

  async consumeConsoleSigninCode(codeHash: string, now: number): Promise<boolean> {
    return this.write(() => this.stmt('DELETE FROM console_signin_codes WHERE code_hash = ? AND expires_at > ?').run(codeHash, now).changes === 1);
  }

  async purgeAuditLog(
    cutoff: number,
    maxRows: number,
    audit: AuditEntry,
    archive?: (records: AuditRecord[]) => void,
  ): Promise<{ deleted: number; cutoff: number; more: boolean }> {
    const limit = Math.max(1, Math.trunc(maxRows));
    return this.write(() => {
      this.stmt('UPDATE audit_retention SET cutoff = ? WHERE id = 1 AND cutoff < ?').run(Math.trunc(cutoff), Math.trunc(cutoff));
      const inForce = num((this.stmt('SELECT cutoff FROM audit_retention WHERE id = 1').get() as Row | undefined)?.cutoff ?? 0);
      // Walks the oldest ids (the rowid order, no index on `at` to pay for on every insert) and
      // stops at the first record that must stay: ids follow time, so what is older lies before it.
      const window = this.stmt('SELECT id, at FROM audit_log ORDER BY id LIMIT ?').raw(true).all(limit) as [number, number][];
      let last: number | null = null;
      let prefix = 0;
      for (const [id, at] of window) {
        if (at >= inForce) break;
        last = id;
        prefix++;
      }
      if (last === null) return { deleted: 0, cutoff: inForce, more: false };
      if (archive) archive((this.stmt('SELECT * FROM audit_log WHERE id <= ? AND at < ? ORDER BY id').all(last, inForce) as Row[]).map(toAudit));
      const deleted = this.stmt('DELETE FROM audit_log WHERE id <= ? AND at < ?').run(last, inForce).changes;
      this.audit({ ...audit, details: { ...audit.details, deleted, cutoff: new Date(inForce).toISOString() } });
      return { deleted, cutoff: inForce, more: prefix === limit };
    });
  }

  async auditRetentionCutoff(): Promise<number> {
    return this.read(() => num((this.stmt('SELECT cutoff FROM audit_retention WHERE id = 1').get() as Row | undefined)?.cutoff ?? 0));
  }

  // ---- signing keys ----------------------------------------------------------------------

  async addSigningKey(key: SigningKeyRecord, audit: AuditEntry): Promise<void> {
    this.write(() => {
      try {
        this.stmt(
          `INSERT INTO signing_keys(kid, alg, certificate_pem, key_ref, status, created_at, activated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(key.kid, key.alg, key.certificatePem, key.keyRef, key.status, key.createdAt, key.activatedAt);
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('signing_key_exists', `signing key ${key.kid} already exists`);
        throw e;
      }
      this.bump('signing_keys');
      this.audit(audit);
    });
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.read(() =>
      (this.stmt('SELECT * FROM signing_keys ORDER BY created_at, kid').all() as Row[]).map(toSigningKey),
    );
  }

  async activateSigningKey(kid: string, audit: AuditEntry): Promise<void> {
    this.write(() => {
      const r = this.stmt('SELECT status FROM signing_keys WHERE kid = ?').get(kid) as Row | undefined;
      if (!r) throw notFound('signing_key_not_found', `no signing key ${kid}`);
      if (r.status === 'retired') throw conflict('signing_key_retired', `signing key ${kid} is retired`);
      this.stmt("UPDATE signing_keys SET status = 'trusted' WHERE status = 'active'").run();
      this.stmt("UPDATE signing_keys SET status = 'active', activated_at = ? WHERE kid = ?").run(Date.now(), kid);
      this.bump('signing_keys');
      this.audit(audit);
    });
  }

  async retireSigningKey(kid: string, audit: AuditEntry): Promise<void> {
    this.write(() => {
      const r = this.stmt('SELECT status FROM signing_keys WHERE kid = ?').get(kid) as Row | undefined;
      if (!r) throw notFound('signing_key_not_found', `no signing key ${kid}`);
      if (r.status === 'active') throw conflict('signing_key_active', `activate another key before retiring ${kid}`);
      this.stmt("UPDATE signing_keys SET status = 'retired' WHERE kid = ?").run(kid);
      this.bump('signing_keys');
      this.audit(audit);
    });
  }

  // ---- change detection and health -------------------------------------------------------

  async changeVersion(topic: ChangeTopic): Promise<number> {
    return this.read(
      () => num((this.stmt('SELECT version FROM change_versions WHERE topic = ?').get(topic) as Row | undefined)?.version ?? 0),
    );
  }

  /** Readiness: the file is still the one at the path, its disk has room, and it answers. */
  async ping(): Promise<void> {
    this.health.check();
    this.read(() => this.stmt('SELECT 1').get());
  }

  close(): void {
    // Writes already asked for are committed (or refused) before the file is let go.
    this.flushPending();
    this.db.close();
  }
}
