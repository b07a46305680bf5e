import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../shared/store/index.js';
import { MIGRATIONS } from '../../shared/store/migrations.js';
import type { Device, DeviceCa, Factory } from '../../shared/store/index.js';

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
  await store.insertToken(
    {
      id: 'tok_1',
      kind: 'device',
      factoryId: f.id,
      deviceUuid: 'd1',
      scopes: ['containers:read'],
      description: null,
      service: null,
      subject: 'd1',
      createdAt: 1,
      expiresAt: 5,
      secretHash: 'h1',
    },
    null,
  );
  return f;
}

describe('SqliteStore', () => {
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

  it('deletes a device token as soon as the device leaves the active state', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'active', caState: 'active', factoryName: 'acme' });
    await store.setDeviceState('d1', 'disabled', 'lost', audit);
    expect(await store.findTokenBySecretHash('h1')).toBeNull();
    store.close();
  });

  it('deletes the tokens of every device under a revoked CA and bumps the CA change version', async () => {
    const store = new SqliteStore(path);
    await seed(store);
    const before = await store.changeVersion('device_cas');
    await store.setDeviceCaState('ca-1', 'revoked', 'key leaked', audit);
    expect(await store.changeVersion('device_cas')).toBe(before + 1);
    expect(await store.findTokenBySecretHash('h1')).toBeNull();
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
