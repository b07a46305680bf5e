import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../shared/store/index.js';
import { MIGRATIONS } from '../../shared/store/migrations.js';
import { loadConfig } from '../../shared/config.js';
import { openAuthority } from '../../shared/runtime.js';
import type { Device, DeviceCa, Factory, NewTokenRecord } from '../../shared/store/index.js';

const audit = { actor: 'operator', action: 'test', outcome: 'success' as const };

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-store-'));
  path = join(dir, 'data', 'tollgate.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function factory(name = 'acme'): Factory {
  return { id: `f-${name}`, name, createdAt: 1 };
}
function ca(factoryId: string, id = 'ca-1'): DeviceCa {
  return {
    id,
    factoryId,
    kind: 'external',
    certificatePem: `pem-${id}`,
    fingerprint256: `fp-${id}`,
    subjectCommonName: 'CA',
    notAfter: 10,
    state: 'active',
    stateReason: null,
    keyRef: null,
    createdAt: 1,
  };
}
function device(uuid: string, factoryId: string, caId: string): Device {
  return {
    uuid,
    factoryId,
    caId,
    name: null,
    state: 'active',
    stateReason: null,
    isTest: false,
    certificatePem: `cert-${uuid}`,
    certificateFingerprint: `fp-${uuid}`,
    publicKeyFingerprint: `pk-${uuid}`,
    notAfter: 10,
    createdAt: 1,
    updatedAt: 1,
  };
}

async function seed(store: SqliteStore) {
  const f = await store.createFactory(factory(), audit);
  await store.addDeviceCa(ca(f.id), audit);
  await store.insertDevice(device('d1', f.id, 'ca-1'), audit);
  await store.insertToken({ ...deviceToken('tok_1', 'h1'), factoryId: f.id }, null);
  return f;
}

describe('SqliteStore', () => {
  it('commits with synchronous=NORMAL by default and FULL when configured, as the process opening it is configured', () => {
    const normal = new SqliteStore(path);
    expect(normal.synchronous()).toBe('NORMAL');
    const full = new SqliteStore(path, { synchronous: 'FULL' });
    expect(full.synchronous()).toBe('FULL');
    normal.close();
    full.close();
    const deps = openAuthority(loadConfig({ env: { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'FULL' }, cwd: dir }));
    expect(deps.store.synchronous()).toBe('FULL');
    deps.store.close();
  });

  it('creates the file with mode 0600, in WAL mode, with foreign keys on, and migrates once', () => {
    const a = new SqliteStore(path);
    const b = new SqliteStore(path); // a second process opening the same file re-runs nothing
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    expect(a.schemaVersion()).toBe(latest);
    expect(b.schemaVersion()).toBe(latest);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: MIGRATIONS.length });
    raw.close();
    a.close();
    b.close();
  });

  it('writes every state change together with its audit record', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const records = await store.listAudit();
    expect(records.map((r) => r.action)).toEqual(['test', 'test', 'test']);
    store.close();
  });

  it('refuses a duplicate device UUID and a reused certificate with precise conflicts', async () => {
    const store = new SqliteStore(path);
    const f = await seed(store);
    await expect(store.insertDevice(device('d1', f.id, 'ca-1'), audit)).rejects.toMatchObject({ code: 'device_exists' });
    const twin = { ...device('d2', f.id, 'ca-1'), certificateFingerprint: 'fp-d1' };
    await expect(store.insertDevice(twin, audit)).rejects.toMatchObject({ code: 'certificate_in_use' });
    // A refused write leaves no audit record behind.
    expect(await store.listAudit()).toHaveLength(3);
    store.close();
  });

  it('revokes a device token as soon as the device leaves the active state, and keeps it until it expires', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'active', caState: 'active', factoryName: 'acme', revokedAt: null });
    await store.setDeviceState('d1', 'disabled', 'lost', audit);
    expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'disabled', revokedAt: expect.any(Number) });
    store.close();
  });

  it('revokes the tokens of every device under a revoked CA and bumps the CA change version', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const before = await store.changeVersion('device_cas');
    await store.setDeviceCaState('ca-1', 'revoked', 'key leaked', audit);
    expect(await store.changeVersion('device_cas')).toBe(before + 1);
    expect(await store.findTokenBySecretHash('h1')).toMatchObject({ caState: 'revoked', revokedAt: expect.any(Number) });
    expect((await store.getDevice('d1'))?.caState).toBe('revoked');
    store.close();
  });

  it('keeps the audit trail append-only at the engine level', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const raw = new Database(path);
    expect(() => raw.prepare("UPDATE audit_log SET reason = 'x'").run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
    raw.close();
    store.close();
  });

  it('purges expired tokens only', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    expect(await store.purgeExpiredTokens(5)).toBe(0);
    expect(await store.purgeExpiredTokens(6)).toBe(1);
    store.close();
  });

  it('sees writes made through another connection to the same file (a second process)', async () => {
    const gateway = new SqliteStore(path);
    const authsvc = new SqliteStore(path);
    await seed(gateway);
    expect(await authsvc.findTokenBySecretHash('h1')).not.toBeNull();
    await authsvc.setDeviceState('d1', 'revoked', null, audit);
    expect((await gateway.getDevice('d1'))?.state).toBe('revoked');
    gateway.close();
    authsvc.close();
  });

  it('keeps exactly one active signing key', async () => {
    const store = new SqliteStore(path);
    const key = (kid: string) => ({ kid, alg: 'ES256', certificatePem: 'c', keyRef: `keys/${kid}.key`, status: 'trusted' as const, createdAt: 1, activatedAt: null });
    await store.addSigningKey(key('a'), audit);
    await store.addSigningKey(key('b'), audit);
    await store.activateSigningKey('a', audit);
    await store.activateSigningKey('b', audit);
    const keys = await store.listSigningKeys();
    expect(keys.map((k) => [k.kid, k.status])).toEqual([
      ['a', 'trusted'],
      ['b', 'active'],
    ]);
    await expect(store.retireSigningKey('b', audit)).rejects.toMatchObject({ code: 'signing_key_active' });
    await store.retireSigningKey('a', audit);
    await expect(store.activateSigningKey('a', audit)).rejects.toMatchObject({ code: 'signing_key_retired' });
    store.close();
  });
});

function deviceToken(id: string, secretHash: string): NewTokenRecord {
  return {
    id,
    kind: 'device',
    factoryId: 'f-acme',
    deviceUuid: 'd1',
    scopes: ['containers:read'],
    description: null,
    service: null,
    subject: 'd1',
    createdAt: 1,
    expiresAt: 5,
    secretHash,
  };
}

const minted = (tokenId: string) => ({ actor: 'device:d1', action: 'token.minted', outcome: 'success' as const, target: 'd1', details: { tokenId } });

describe('SqliteStore group commit', () => {
  it('commits token inserts and audit appends of one event-loop turn in one transaction, visible when each caller resumes', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const db = (store as unknown as { core: { db: Database.Database } }).core.db;
    const transaction = vi.spyOn(db, 'transaction');
    const other = new Database(path, { readonly: true });
    const seen: number[] = [];
    const writes = Array.from({ length: 10 }, (_, i) =>
      (i % 2 === 0 ? store.insertToken(deviceToken(`tok_g${i}`, `hg${i}`), minted(`tok_g${i}`)) : store.appendAudit(minted(`x${i}`))).then(() => {
        // Another connection (another process) already sees this caller's rows.
        seen.push((other.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted'").get() as { n: number }).n);
      }),
    );
    await Promise.all(writes);
    expect(transaction).toHaveBeenCalledTimes(1);
    expect(seen).toEqual(Array(10).fill(10));
    expect((other.prepare("SELECT COUNT(*) AS n FROM api_tokens WHERE id LIKE 'tok_g%'").get() as { n: number }).n).toBe(5);
    other.close();
    store.close();
  });

  it('fails only the caller whose entry is bad; the rest of its batch is committed', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const results = await Promise.allSettled([
      store.insertToken(deviceToken('tok_a', 'ha'), minted('tok_a')),
      store.insertToken(deviceToken('tok_b', 'h1'), minted('tok_b')), // h1 is the seeded token's hash
      store.appendAudit(minted('plain')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await store.getToken('tok_a')).not.toBeNull();
    expect(await store.getToken('tok_b')).toBeNull();
    // The refused token left no audit record; the others have theirs.
    const details = (await store.listAudit({ action: 'token.minted' })).map((r) => r.details?.tokenId);
    expect(details).toEqual(['tok_a', 'plain']);
    store.close();
  });

  it('fails every caller of a batch with store_busy when another process holds the lock, and writes nothing', async () => {
    const store = new SqliteStore(path, { busyTimeoutMs: 50 });
    await seed(store);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const results = await Promise.allSettled([store.appendAudit(minted('a')), store.insertToken(deviceToken('tok_c', 'hc'), minted('tok_c'))]);
    other.exec('ROLLBACK');
    other.close();
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'fulfilled'))).toEqual(['store_busy', 'store_busy']);
    expect(await store.listAudit({ action: 'token.minted' })).toEqual([]);
    expect(await store.getToken('tok_c')).toBeNull();
    store.close();
  });

  it('keeps the order of writes: a queued token is written before a later revocation revokes it', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const queued = store.insertToken(deviceToken('tok_r', 'hr'), minted('tok_r'));
    await store.setDeviceState('d1', 'revoked', 'stolen', audit);
    await queued;
    expect((await store.getToken('tok_r'))?.revokedAt).toEqual(expect.any(Number));
    const actions = (await store.listAudit()).map((r) => r.action);
    expect(actions.slice(-2)).toEqual(['token.minted', 'test']);
    store.close();
  });

  it('commits what is queued when the store is closed', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const queued = store.appendAudit(minted('last'));
    store.close();
    await queued;
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted'").get()).toEqual({ n: 1 });
    raw.close();
  });
});

describe('SqliteStore audit retention', () => {
  const DAY = 86_400_000;
  const purgeRecord = { actor: 'system', action: 'audit.purged', outcome: 'success' as const, details: { retentionDays: 30 } };

  /** Audit records written at chosen times (ms), as a process would have written them then. */
  function writeAt(times: number[]): void {
    const raw = new Database(path);
    const insert = raw.prepare("INSERT INTO audit_log(at, actor, action, outcome) VALUES (?, 'operator', 'old', 'success')");
    for (const at of times) insert.run(at);
    raw.close();
  }

  it('deletes records older than the cutoff, keeps newer ones, and records the purge', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 40 * DAY, now - 35 * DAY, now - 31 * DAY, now - 29 * DAY, now - DAY]);
    const cutoff = now - 30 * DAY;
    expect(await store.purgeAuditLog(cutoff, 100, purgeRecord)).toEqual({ deleted: 3, cutoff, more: false });
    const left = await store.listAudit();
    expect(left.filter((r) => r.action === 'old').map((r) => Math.round((now - r.at) / DAY))).toEqual([29, 1]);
    const recorded = left.filter((r) => r.action === 'audit.purged');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ actor: 'system', outcome: 'success', details: { retentionDays: 30, deleted: 3, cutoff: new Date(cutoff).toISOString() } });
    expect(await store.auditRetentionCutoff()).toBe(cutoff);
    // Nothing more to delete: no second record.
    expect(await store.purgeAuditLog(cutoff, 100, purgeRecord)).toEqual({ deleted: 0, cutoff, more: false });
    expect((await store.listAudit({ action: 'audit.purged' })).length).toBe(1);
    store.close();
  });

  it('deletes in bounded steps, oldest first, and says when older records remain', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 9 * DAY, now - 8 * DAY, now - 7 * DAY, now - 6 * DAY, now - 5 * DAY]);
    const cutoff = now - 2 * DAY;
    expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 2, more: true });
    expect((await store.listAudit({ action: 'old' })).map((r) => Math.round((now - r.at) / DAY))).toEqual([7, 6, 5]);
    expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 2, more: true });
    expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 1, more: false });
    expect(await store.listAudit({ action: 'old' })).toEqual([]);
    store.close();
  });

  it('still refuses to delete or rewrite a record newer than the cutoff, outside the purge too', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 10 * DAY, now - DAY]);
    await store.purgeAuditLog(now - 20 * DAY, 100, purgeRecord);
    const raw = new Database(path);
    // Older than what retention allows so far (cutoff 20 days ago) is still protected.
    expect(() => raw.prepare("DELETE FROM audit_log WHERE action = 'old'").run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM audit_log WHERE at > ?').run(now - 2 * DAY)).toThrow(/append-only/);
    expect(() => raw.prepare("UPDATE audit_log SET reason = 'x' WHERE action = 'old'").run()).toThrow(/append-only/);
    expect((raw.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'old'").get() as { n: number }).n).toBe(2);
    raw.close();
    store.close();
  });

  it('never moves the cutoff backwards, whoever asks', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 5 * DAY]);
    const later = now - 3 * DAY;
    await store.purgeAuditLog(later, 100, purgeRecord);
    // A purge asking for an earlier cutoff works under the one in force.
    expect(await store.purgeAuditLog(now - 30 * DAY, 100, purgeRecord)).toEqual({ deleted: 0, cutoff: later, more: false });
    expect(await store.auditRetentionCutoff()).toBe(later);
    const raw = new Database(path);
    expect(() => raw.prepare('UPDATE audit_retention SET cutoff = ?').run(later - 1)).toThrow(/only moves forward/);
    expect(() => raw.prepare('INSERT OR REPLACE INTO audit_retention(id, cutoff) VALUES (1, 0)').run()).toThrow(/only moves forward/);
    expect(() => raw.prepare('DELETE FROM audit_retention').run()).toThrow(/only moves forward/);
    expect(raw.prepare('SELECT cutoff FROM audit_retention').all()).toEqual([{ cutoff: later }]);
    raw.close();
    store.close();
  });

  it('keeps every record of a store migrated from before retention existed', async () => {
    const raw = new Database(join(dir, 'old.db'));
    raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
      raw.exec(m.sql);
      raw.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 1);
    }
    raw.prepare("INSERT INTO audit_log(at, actor, action, outcome) VALUES (1, 'operator', 'ancient', 'success')").run();
    raw.close();
    const store = new SqliteStore(join(dir, 'old.db'));
    expect(await store.auditRetentionCutoff()).toBe(0);
    const check = new Database(join(dir, 'old.db'));
    expect(() => check.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
    check.close();
    expect((await store.listAudit()).map((r) => r.action)).toEqual(['ancient']);
    store.close();
  });
});
