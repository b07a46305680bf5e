import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MIGRATIONS } from '../../shared/store/migrations.js';
import type { Device, DeviceCa, Factory, NewTokenRecord, SqlStore, StoreLocation } from '../../shared/store/index.js';
import { INSTALLED_ENGINES, type EngineUnderTest, type RawDatabase } from '../support/engines.js';

/**
 * The store's contract, one suite for both engines: every behaviour the authority, the gateway and
 * the realm rely on holds on SQLite and on PostgreSQL alike, including what the database itself
 * must refuse (rewriting the audit trail) and what several processes sharing it must see.
 */

const audit = { actor: 'operator', action: 'test', outcome: 'success' as const };
const DAY = 86_400_000;

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
function deviceToken(id: string, secretHash: string, uuid = 'd1'): NewTokenRecord {
  return {
    id,
    kind: 'device',
    factoryId: 'f-acme',
    deviceUuid: uuid,
    scopes: ['containers:read'],
    description: null,
    service: null,
    subject: uuid,
    createdAt: 1,
    expiresAt: 5,
    secretHash,
  };
}
const minted = (tokenId: string) => ({ actor: 'device:d1', action: 'token.minted', outcome: 'success' as const, target: 'd1', details: { tokenId } });

async function seed(store: SqlStore) {
  const f = await store.createFactory(factory(), audit);
  await store.addDeviceCa(ca(f.id), audit);
  await store.insertDevice(device('d1', f.id, 'ca-1'), audit);
  await store.insertToken({ ...deviceToken('tok_1', 'h1'), factoryId: f.id }, null);
  return f;
}

describe.each(INSTALLED_ENGINES.map((e) => [e.name, e] as const))('store on %s', (_name, engine: EngineUnderTest) => {
  let location: StoreLocation;
  const opened: SqlStore[] = [];
  const raws: RawDatabase[] = [];
  const open = (options?: Parameters<EngineUnderTest['open']>[1]) => {
    const s = engine.open(location, options);
    opened.push(s);
    return s;
  };
  const raw = async () => {
    const r = await engine.raw(location);
    raws.push(r);
    return r;
  };
  /** Audit records written at chosen times (ms), as a process would have written them then. */
  async function writeAt(times: number[]): Promise<void> {
    const r = await raw();
    for (const at of times) await r.run("INSERT INTO audit_log(at, actor, action, outcome) VALUES (?, 'operator', 'old', 'success')", [at]);
  }
  const count = async (sql: string) => Number((await (await raw()).all<{ n: number | string }>(sql))[0]!.n);

  beforeEach(async (context) => {
    // Tests of the migrations themselves start from nothing; the rest from a migrated database.
    location = await engine.create({ empty: context.task.name.includes('migrat') });
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) await r.close();
    for (const s of opened.splice(0)) await s.close();
    // Not awaited: the cluster goes with the run, and a drop costs as much as the test.
    void engine.destroy(location).catch(() => undefined);
  });

  describe('schema and transactions', () => {
    it('migrates once, also when two processes open it at the same time', async () => {
      const a = open();
      const b = open();
      await Promise.all([a.ready(), b.ready()]);
      const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
      expect(await a.schemaVersion()).toBe(latest);
      expect(await b.schemaVersion()).toBe(latest);
      expect(await count('SELECT COUNT(*) AS n FROM schema_migrations')).toBe(MIGRATIONS.length);
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    });

    it('writes every state change together with its audit record', async () => {
      const store = open();
      await seed(store);
      expect((await store.listAudit()).map((r) => r.action)).toEqual(['test', 'test', 'test']);
    });

    it('refuses a duplicate device UUID and a reused certificate with precise conflicts, leaving no audit record', async () => {
      const store = open();
      const f = await seed(store);
      await expect(store.insertDevice(device('d1', f.id, 'ca-1'), audit)).rejects.toMatchObject({ code: 'device_exists' });
      const twin = { ...device('d2', f.id, 'ca-1'), certificateFingerprint: 'fp-d1' };
      await expect(store.insertDevice(twin, audit)).rejects.toMatchObject({ code: 'certificate_in_use' });
      await expect(store.createFactory(factory(), audit)).rejects.toMatchObject({ code: 'factory_exists' });
      expect(await store.listAudit()).toHaveLength(3);
    });

    it('rolls back every write of a transaction that fails half way', async () => {
      const store = open();
      const f = await seed(store);
      await store.insertDevice(device('d2', f.id, 'ca-1'), audit);
      // The rotation writes the device row first, then fails on the certificate another device holds.
      const rotation = {
        certificatePem: 'new',
        certificateFingerprint: 'fp-d1',
        publicKeyFingerprint: 'pk',
        notAfter: 20,
        previousCertificateFingerprint: 'fp-d2',
        retire: ['fp-old'],
      };
      await expect(store.rotateDeviceCertificate('d2', rotation, audit)).rejects.toMatchObject({ code: 'certificate_in_use' });
      expect((await store.getDevice('d2'))?.certificateFingerprint).toBe('fp-d2');
      expect(await store.isCertificateRetired('fp-old')).toBe(false);
      expect(await store.listAudit()).toHaveLength(4);
    });

    it('revokes a device token with the state change only when told to (the authority decides), and keeps it until it expires', async () => {
      const store = open();
      await seed(store);
      expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'active', caState: 'active', factoryName: 'acme', revokedAt: null });
      await store.setDeviceState('d1', 'pending', null, audit, { revokeTokens: false });
      expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'pending', revokedAt: null });
      await store.setDeviceState('d1', 'disabled', 'lost', audit, { revokeTokens: true });
      expect(await store.findTokenBySecretHash('h1')).toMatchObject({ deviceState: 'disabled', revokedAt: expect.any(Number) });
      expect((await store.getDevice('d1'))?.stateReason).toBe('lost');
    });

    it('revokes the tokens of every device under a CA when told to, and bumps the CA change version', async () => {
      const store = open();
      await seed(store);
      const before = await store.changeVersion('device_cas');
      await store.setDeviceCaState('ca-1', 'disabled', null, audit, { revokeDeviceTokens: false });
      expect(await store.findTokenBySecretHash('h1')).toMatchObject({ revokedAt: null });
      await store.setDeviceCaState('ca-1', 'revoked', 'key leaked', audit, { revokeDeviceTokens: true });
      expect(await store.changeVersion('device_cas')).toBe(before + 2);
      expect(await store.findTokenBySecretHash('h1')).toMatchObject({ caState: 'revoked', revokedAt: expect.any(Number) });
      expect((await store.getDevice('d1'))?.caState).toBe('revoked');
    });

    it('keeps the audit trail append-only in the database itself', async () => {
      const store = open();
      await seed(store);
      const r = await raw();
      await expect(r.run("UPDATE audit_log SET reason = 'x'")).rejects.toThrow(/append-only/);
      await expect(r.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
      if (engine.name === 'postgres') await expect(r.run('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
      expect(await count('SELECT COUNT(*) AS n FROM audit_log')).toBe(3);
    });

    it('purges expired tokens only', async () => {
      const store = open();
      await seed(store);
      expect(await store.purgeExpiredTokens(5)).toBe(0);
      expect(await store.purgeExpiredTokens(6)).toBe(1);
    });

    it('shows each process what another committed', async () => {
      const gateway = open();
      const authsvc = open();
      await seed(gateway);
      expect(await authsvc.findTokenBySecretHash('h1')).not.toBeNull();
      await authsvc.setDeviceState('d1', 'revoked', null, audit, { revokeTokens: true });
      expect((await gateway.getDevice('d1'))?.state).toBe('revoked');
    });

    it('keeps concurrent writers of two processes whole: every change with its audit record, none lost', async () => {
      const a = open();
      const b = open();
      await seed(a);
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const s = i % 2 === 0 ? a : b;
          return i % 4 < 2
            ? s.insertToken({ ...deviceToken(`tok_c${i}`, `hc${i}`) }, minted(`tok_c${i}`))
            : s.createFactory(factory(`f${i}`), { ...audit, action: 'factory.created', target: `f${i}` });
        }),
      );
      await Promise.all([a.appendAudit(minted('flush-a')), b.appendAudit(minted('flush-b'))]);
      expect(await count("SELECT COUNT(*) AS n FROM api_tokens WHERE id LIKE 'tok_c%'")).toBe(20);
      expect(await count("SELECT COUNT(*) AS n FROM factories WHERE name LIKE 'f%'")).toBe(20);
      expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'factory.created'")).toBe(20);
      expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted'")).toBe(22);
    });

    it('makes exactly one of two concurrent conflicting transitions win', async () => {
      const a = open();
      const b = open();
      const key = (kid: string, status: 'trusted' | 'active') => ({ kid, alg: 'ES256', certificatePem: 'c', keyRef: `keys/${kid}.key`, status, createdAt: 1, activatedAt: null });
      await a.addSigningKey(key('old', 'active'), audit);
      await a.addSigningKey(key('x', 'trusted'), audit);
      await a.addSigningKey(key('y', 'trusted'), audit);
      // Two operators activate different keys at once, each demoting the one they saw active.
      const results = await Promise.allSettled([
        a.transitionSigningKeys([{ kid: 'old', from: 'active', to: 'trusted' }, { kid: 'x', from: 'trusted', to: 'active', activatedAt: 5 }], audit),
        b.transitionSigningKeys([{ kid: 'old', from: 'active', to: 'trusted' }, { kid: 'y', from: 'trusted', to: 'active', activatedAt: 5 }], audit),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'signing_keys_changed' });
      expect((await a.listSigningKeys()).filter((k) => k.status === 'active')).toHaveLength(1);
    });
  });

  describe('cursors', () => {
    it('pages devices in UUID order (byte order on both engines) and audit records in id order', async () => {
      const store = open();
      const f = await seed(store);
      for (const uuid of ['B-2', 'a-1', 'a-10', 'a-2', 'Z']) await store.insertDevice({ ...device(uuid, f.id, 'ca-1'), state: uuid === 'Z' ? 'disabled' : 'active' }, audit);
      const all: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.listDevices(f.id, { limit: 2, ...(after !== undefined ? { after } : {}) });
        if (page.length === 0) break;
        all.push(...page.map((d) => d.uuid));
        after = page[page.length - 1]!.uuid;
      }
      expect(all).toEqual(['B-2', 'Z', 'a-1', 'a-10', 'a-2', 'd1']);
      expect((await store.listDevices(f.id, { state: 'disabled' })).map((d) => d.uuid)).toEqual(['Z']);
      const records = await store.listAudit({ limit: 3 });
      const next = await store.listAudit({ limit: 3, after: String(records[2]!.id) });
      expect(next[0]!.id).toBeGreaterThan(records[2]!.id);
      expect([...records, ...next].map((r) => r.id)).toEqual([...records, ...next].map((r) => r.id).sort((x, y) => x - y));
      expect((await store.listAudit({ factoryId: 'nope' })).length).toBe(0);
    });
  });

  describe('group commit', () => {
    it('commits token inserts and audit appends of one turn in one transaction, visible to another process when each caller resumes', async () => {
      const store = open();
      await seed(store);
      const other = await raw();
      const commits = vi.spyOn(store.database, 'insertAll');
      const seen: number[] = [];
      const writes = Array.from({ length: 10 }, (_, i) =>
        (i % 2 === 0 ? store.insertToken(deviceToken(`tok_g${i}`, `hg${i}`), minted(`tok_g${i}`)) : store.appendAudit(minted(`x${i}`))).then(async () => {
          seen.push(Number((await other.all<{ n: number }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted'"))[0]!.n));
        }),
      );
      await Promise.all(writes);
      expect(commits).toHaveBeenCalledTimes(1);
      expect(seen).toEqual(Array(10).fill(10));
      expect(await count("SELECT COUNT(*) AS n FROM api_tokens WHERE id LIKE 'tok_g%'")).toBe(5);
    });

    it('fails only the caller whose entry is bad; the rest of its batch is committed', async () => {
      const store = open();
      await seed(store);
      const results = await Promise.allSettled([
        store.insertToken(deviceToken('tok_a', 'ha'), minted('tok_a')),
        store.insertToken(deviceToken('tok_b', 'h1'), minted('tok_b')), // h1 is the seeded token's hash
        store.appendAudit(minted('plain')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await store.getToken('tok_a')).not.toBeNull();
      expect(await store.getToken('tok_b')).toBeNull();
      expect((await store.listAudit({ action: 'token.minted' })).map((r) => r.details?.tokenId)).toEqual(['tok_a', 'plain']);
    });

    it('fails every caller of a batch with store_busy when another process holds the lock too long, and writes nothing', async () => {
      const store = open({ busyTimeoutMs: 50, lockTimeoutMs: 50 });
      await seed(store);
      const other = await raw();
      if (engine.name === 'sqlite') await other.run('BEGIN IMMEDIATE');
      else await other.run('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      const results = await Promise.allSettled([store.appendAudit(minted('a')), store.insertToken(deviceToken('tok_c', 'hc'), minted('tok_c'))]);
      await other.run('ROLLBACK');
      expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'fulfilled'))).toEqual(['store_busy', 'store_busy']);
      expect(await store.listAudit({ action: 'token.minted' })).toEqual([]);
      expect(await store.getToken('tok_c')).toBeNull();
    });

    it('keeps the order of writes: a queued token is written before a later revocation revokes it', async () => {
      const store = open();
      await seed(store);
      const queued = store.insertToken(deviceToken('tok_r', 'hr'), minted('tok_r'));
      await store.setDeviceState('d1', 'revoked', 'stolen', audit, { revokeTokens: true });
      await queued;
      expect((await store.getToken('tok_r'))?.revokedAt).toEqual(expect.any(Number));
      expect((await store.listAudit()).map((r) => r.action).slice(-2)).toEqual(['token.minted', 'test']);
    });

    it('commits what is queued when the store is closed', async () => {
      const store = engine.open(location);
      await seed(store);
      const queued = store.appendAudit(minted('last'));
      const closed = store.close();
      await queued;
      await closed;
      expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted'")).toBe(1);
    });
  });

  describe('lists, counts and filters', () => {
    it('finds devices by UUID prefix or part of the name, literally, and by test flag', async () => {
      const store = open();
      const f = await seed(store);
      await store.insertDevice({ ...device('abc-1', f.id, 'ca-1'), name: 'line 4 press' }, audit);
      await store.insertDevice({ ...device('abd-2', f.id, 'ca-1'), name: '100%_done', isTest: true }, audit);
      const uuids = async (o: Parameters<SqlStore['listDevices']>[1]) => (await store.listDevices(f.id, o)).map((d) => d.uuid);
      expect(await uuids({ search: 'ab' })).toEqual(['abc-1', 'abd-2']);
      expect(await uuids({ search: 'press' })).toEqual(['abc-1']);
      // LIKE's wildcards in the search text match only themselves.
      expect(await uuids({ search: '%_' })).toEqual(['abd-2']);
      expect(await uuids({ search: '_' })).toEqual(['abd-2']);
      expect(await uuids({ test: true })).toEqual(['abd-2']);
      expect(await uuids({ test: false })).toEqual(['abc-1', 'd1']);
    });

    it('counts devices per CA and state, and active devices expiring in a window per factory', async () => {
      const store = open();
      const f = await seed(store);
      await store.addDeviceCa(ca(f.id, 'ca-2'), audit);
      await store.insertDevice({ ...device('e1', f.id, 'ca-2'), notAfter: 100 }, audit);
      await store.insertDevice({ ...device('e2', f.id, 'ca-2'), notAfter: 200, state: 'disabled' }, audit);
      await store.insertDevice({ ...device('e3', f.id, 'ca-2'), notAfter: 300 }, audit);
      const byCa = await store.countDevicesByCa(f.id);
      expect(byCa.get('ca-1')).toEqual({ active: 1, pending: 0, disabled: 0, revoked: 0 });
      expect(byCa.get('ca-2')).toEqual({ active: 2, pending: 0, disabled: 1, revoked: 0 });
      expect(await store.countDevicesExpiring(50, 250)).toEqual({ [f.id]: 1 });
      expect(await store.countDevicesExpiring(400, 500)).toEqual({});
    });

    it('inserts a batch of devices all or none', async () => {
      const store = open();
      const f = await seed(store);
      const entry = (uuid: string) => ({ device: device(uuid, f.id, 'ca-1'), audit: { ...audit, action: 'device.enrolled', target: uuid } });
      expect((await store.insertDevices([entry('b1'), entry('b2')])).map((d) => d.uuid)).toEqual(['b1', 'b2']);
      await expect(store.insertDevices([entry('b3'), entry('d1')])).rejects.toMatchObject({ code: 'device_exists' });
      expect(await store.getDevice('b3')).toBeNull();
      expect((await store.listAudit({ action: 'device.enrolled' })).map((r) => r.target)).toEqual(['b1', 'b2']);
    });

    it('filters the audit trail by actor, outcome and time, and pages it newest first', async () => {
      const store = open();
      await store.ready();
      const r = await raw();
      for (const [at, actor, outcome] of [[1000, 'operator', 'success'], [2000, 'token:t1', 'denied'], [3000, 'token:t1', 'success'], [4000, 'operator', 'denied']] as const) {
        await r.run("INSERT INTO audit_log(at, actor, action, outcome) VALUES (?, ?, 'x', ?)", [at, actor, outcome]);
      }
      const ats = async (f: Parameters<SqlStore['listAudit']>[0]) => (await store.listAudit({ action: 'x', ...f })).map((a) => a.at);
      expect(await ats({ actor: 'token:t1' })).toEqual([2000, 3000]);
      expect(await ats({ outcome: 'denied' })).toEqual([2000, 4000]);
      expect(await ats({ since: 2000, until: 4000 })).toEqual([2000, 3000]);
      const newest = await store.listAudit({ action: 'x', order: 'desc', limit: 2 });
      expect(newest.map((a) => a.at)).toEqual([4000, 3000]);
      expect(await ats({ order: 'desc', after: String(newest[1]!.id) })).toEqual([2000, 1000]);
    });

    it('leaves a tombstone of a deleted device, keeping the strongest facts, and retires its certificates', async () => {
      const store = open();
      const f = await seed(store);
      await store.insertDevice({ ...device('t1', f.id, 'ca-1'), isTest: true }, audit);
      await store.setDeviceState('t1', 'revoked', 'stolen', audit, { revokeTokens: true });
      await store.deleteDevice('t1', { ...audit, action: 'device.deleted', target: 't1' });
      expect(await store.getDevice('t1')).toBeNull();
      expect(await store.getDeviceTombstone('t1')).toMatchObject({ uuid: 't1', factoryId: f.id, factoryName: 'acme', wasTest: true, revoked: true });
      expect(await store.isCertificateRetired('fp-t1')).toBe(true);
      // The same UUID enrolled again (as an active, enrolled device) and deleted: revoked and test stay.
      await store.insertDevice({ ...device('t1', f.id, 'ca-1'), certificateFingerprint: 'fp-t1b' }, audit);
      await store.deleteDevice('t1', audit);
      expect(await store.getDeviceTombstone('t1')).toMatchObject({ wasTest: true, revoked: true });
      expect(await store.getDeviceTombstone('d1')).toBeNull();
    });

    it('revokes a token with every token created from it, transitively, each with its own record', async () => {
      const store = open();
      const f = await seed(store);
      const api = (id: string, parentId: string | null): NewTokenRecord => ({ ...deviceToken(id, `h-${id}`), kind: 'api', deviceUuid: null, subject: id, factoryId: f.id, expiresAt: null, parentId });
      for (const [id, parent] of [['tok_root', null], ['tok_child', 'tok_root'], ['tok_grandchild', 'tok_child'], ['tok_other', null]] as const) {
        await store.insertToken(api(id, parent), null);
      }
      expect((await store.getToken('tok_child'))?.parentId).toBe('tok_root');
      const revoked = await store.revokeToken('tok_root', { ...audit, action: 'token.revoked', target: 'tok_root' });
      expect(revoked.map((d) => d.id)).toEqual(['tok_child', 'tok_grandchild']);
      for (const id of ['tok_root', 'tok_child', 'tok_grandchild']) expect((await store.getToken(id))?.revokedAt).toEqual(expect.any(Number));
      expect((await store.getToken('tok_other'))?.revokedAt).toBeNull();
      const records = await store.listAudit({ action: 'token.revoked' });
      expect(records.map((r) => [r.target, r.details?.revokedWith ?? null])).toEqual([
        ['tok_root', null],
        ['tok_child', 'tok_root'],
        ['tok_grandchild', 'tok_root'],
      ]);
    });

    it('keeps console sign-in codes single-use and until they expire', async () => {
      const store = open();
      await store.addConsoleSigninCode({ codeHash: 'c1', createdAt: 100, expiresAt: 200 }, { ...audit, action: 'console.signin_code_created' });
      expect(await store.consumeConsoleSigninCode('c1', 200)).toBe(false);
      expect(await store.consumeConsoleSigninCode('c1', 150)).toBe(true);
      expect(await store.consumeConsoleSigninCode('c1', 150)).toBe(false);
      expect((await store.listAudit({ action: 'console.signin_code_created' })).length).toBe(1);
    });
  });

  describe('audit retention', () => {
    const purgeRecord = { actor: 'system', action: 'audit.purged', outcome: 'success' as const, details: { retentionDays: 30 } };

    it('deletes records older than the cutoff, keeps newer ones, and records the purge', async () => {
      const store = open();
      await store.ready();
      const now = Date.now();
      await writeAt([now - 40 * DAY, now - 35 * DAY, now - 31 * DAY, now - 29 * DAY, now - DAY]);
      const cutoff = now - 30 * DAY;
      expect(await store.purgeAuditLog(cutoff, 100, purgeRecord)).toEqual({ deleted: 3, cutoff, more: false });
      const left = await store.listAudit();
      expect(left.filter((r) => r.action === 'old').map((r) => Math.round((now - r.at) / DAY))).toEqual([29, 1]);
      const recorded = left.filter((r) => r.action === 'audit.purged');
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ actor: 'system', outcome: 'success', details: { retentionDays: 30, deleted: 3, cutoff: new Date(cutoff).toISOString() } });
      expect(await store.auditRetentionCutoff()).toBe(cutoff);
      expect(await store.purgeAuditLog(cutoff, 100, purgeRecord)).toEqual({ deleted: 0, cutoff, more: false });
      expect((await store.listAudit({ action: 'audit.purged' })).length).toBe(1);
    });

    it('hands the records to the archive before deleting them, and deletes none when the archive fails', async () => {
      const store = open();
      await store.ready();
      const now = Date.now();
      await writeAt([now - 40 * DAY, now - 35 * DAY, now - DAY]);
      const cutoff = now - 30 * DAY;
      await expect(
        store.purgeAuditLog(cutoff, 100, purgeRecord, () => {
          throw new Error('disk full');
        }),
      ).rejects.toThrow('disk full');
      expect((await store.listAudit({ action: 'old' })).length).toBe(3);
      const archived: number[] = [];
      expect((await store.purgeAuditLog(cutoff, 100, purgeRecord, (records) => archived.push(...records.map((r) => r.at)))).deleted).toBe(2);
      expect(archived.map((at) => Math.round((now - at) / DAY))).toEqual([40, 35]);
      expect((await store.listAudit({ action: 'old' })).length).toBe(1);
    });

    it('deletes in bounded steps, oldest first, and says when older records remain', async () => {
      const store = open();
      await store.ready();
      const now = Date.now();
      await writeAt([now - 9 * DAY, now - 8 * DAY, now - 7 * DAY, now - 6 * DAY, now - 5 * DAY]);
      const cutoff = now - 2 * DAY;
      expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 2, more: true });
      expect((await store.listAudit({ action: 'old' })).map((r) => Math.round((now - r.at) / DAY))).toEqual([7, 6, 5]);
      expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 2, more: true });
      expect(await store.purgeAuditLog(cutoff, 2, purgeRecord)).toMatchObject({ deleted: 1, more: false });
      expect(await store.listAudit({ action: 'old' })).toEqual([]);
    });

    it('still refuses to delete or rewrite a record newer than the cutoff, outside the purge too', async () => {
      const store = open();
      await store.ready();
      const now = Date.now();
      await writeAt([now - 10 * DAY, now - DAY]);
      await store.purgeAuditLog(now - 20 * DAY, 100, purgeRecord);
      const r = await raw();
      await expect(r.run("DELETE FROM audit_log WHERE action = 'old'")).rejects.toThrow(/append-only/);
      await expect(r.run('DELETE FROM audit_log WHERE at > ?', [now - 2 * DAY])).rejects.toThrow(/append-only/);
      await expect(r.run("UPDATE audit_log SET reason = 'x' WHERE action = 'old'")).rejects.toThrow(/append-only/);
      expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'old'")).toBe(2);
    });

    it('never moves the cutoff backwards, whoever asks', async () => {
      const store = open();
      await store.ready();
      const now = Date.now();
      await writeAt([now - 5 * DAY]);
      const later = now - 3 * DAY;
      await store.purgeAuditLog(later, 100, purgeRecord);
      expect(await store.purgeAuditLog(now - 30 * DAY, 100, purgeRecord)).toEqual({ deleted: 0, cutoff: later, more: false });
      expect(await store.auditRetentionCutoff()).toBe(later);
      const r = await raw();
      await expect(r.run('UPDATE audit_retention SET cutoff = ?', [later - 1])).rejects.toThrow(/only moves forward/);
      const reset =
        engine.name === 'sqlite' ? 'INSERT OR REPLACE INTO audit_retention(id, cutoff) VALUES (1, 0)' : 'INSERT INTO audit_retention(id, cutoff) VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET cutoff = 0';
      await expect(r.run(reset)).rejects.toThrow(/only moves forward/);
      await expect(r.run('DELETE FROM audit_retention')).rejects.toThrow(/only moves forward/);
      expect(Number((await r.all<{ cutoff: number }>('SELECT cutoff FROM audit_retention'))[0]!.cutoff)).toBe(later);
    });

    it('keeps every record of a store migrated from before retention existed', async () => {
      const r = await raw();
      await r.run('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      for (const m of MIGRATIONS.filter((x) => x.version <= 3)) {
        await r.run(engine.name === 'sqlite' ? m.sqlite : m.postgres);
        await r.run('INSERT INTO schema_migrations VALUES (?, ?, ?)', [m.version, m.name, 1]);
      }
      await r.run("INSERT INTO audit_log(at, actor, action, outcome) VALUES (1, 'operator', 'ancient', 'success')");
      const store = open();
      expect(await store.auditRetentionCutoff()).toBe(0);
      await expect(r.run('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
      expect((await store.listAudit()).map((x) => x.action)).toEqual(['ancient']);
    });
  });

  describe('several instances', () => {
    it('runs a maintenance job once per interval, whichever instance asks, never two at once', async () => {
      let clock = 1_000_000;
      const a = open({ now: () => clock });
      const b = open({ now: () => clock });
      let running = 0;
      let overlapped = false;
      const job = async () => {
        running++;
        if (running > 1) overlapped = true;
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
      };
      const first = await Promise.all([a.runExclusive('purge', 60_000, job), b.runExclusive('purge', 60_000, job), a.runExclusive('purge', 60_000, job)]);
      expect(first.filter(Boolean)).toHaveLength(1);
      clock += 30_000;
      expect(await b.runExclusive('purge', 60_000, job)).toBe(false);
      clock += 30_000;
      expect(await b.runExclusive('purge', 60_000, job)).toBe(true);
      expect(await a.runExclusive('other-job', 60_000, job)).toBe(true);
      expect(overlapped).toBe(false);
    });

    it('stores sealed keys once per reference and re-seals only what is still as read', async () => {
      const store = open();
      await store.putSealedKey({ ref: 'keys/a.key', kekId: 'k1', sealed: 's1', createdAt: 1 });
      await expect(store.putSealedKey({ ref: 'keys/a.key', kekId: 'k1', sealed: 's2', createdAt: 1 })).rejects.toMatchObject({ code: 'key_exists' });
      expect(await store.sealedKeysNotUnder('k2', 10)).toHaveLength(1);
      expect(await store.resealKey('keys/a.key', 's1', 'k2', 's3', { ...audit, action: 'key.resealed' })).toBe(true);
      expect(await store.resealKey('keys/a.key', 's1', 'k2', 's4', { ...audit, action: 'key.resealed' })).toBe(false);
      expect(await store.getSealedKey('keys/a.key')).toMatchObject({ kekId: 'k2', sealed: 's3' });
      expect(await store.countSealedKeys()).toEqual({ k2: 1 });
      expect((await store.listAudit({ action: 'key.resealed' })).length).toBe(1);
      await store.deleteSealedKey('keys/a.key');
      expect(await store.getSealedKey('keys/a.key')).toBeNull();
    });

    it('keeps operator credentials by hash, revocable once', async () => {
      const store = open();
      await store.insertOperatorToken({ id: 'op1', secretHash: 'oh', description: 'ops', createdAt: 1, expiresAt: null, revokedAt: null }, audit);
      expect(await store.findOperatorTokenBySecretHash('oh')).toMatchObject({ id: 'op1', revokedAt: null });
      await store.revokeOperatorToken('op1', audit);
      expect((await store.findOperatorTokenBySecretHash('oh'))?.revokedAt).not.toBeNull();
      await expect(store.revokeOperatorToken('op1', audit)).rejects.toMatchObject({ code: 'token_not_found' });
      expect(await store.listOperatorTokens()).toHaveLength(1);
    });

    it(engine.name === 'postgres' ? 'tells every instance of a CA or signing-key change at once' : 'offers no change feed (followers poll the change versions)', async () => {
      const a = open();
      const b = open();
      await Promise.all([a.ready(), b.ready()]);
      const heard: string[] = [];
      const stop = b.subscribeChanges((topic) => heard.push(topic), () => undefined);
      if (engine.name === 'sqlite') {
        expect(stop).toBeNull();
        return;
      }
      await a.createFactory(factory(), audit);
      // The listener connects in the background; a change made before it listens is not heard.
      let n = 0;
      await vi.waitFor(async () => {
        await a.addDeviceCa(ca('f-acme', `ca-probe-${n++}`), audit);
        expect(heard).toContain('device_cas');
      });
      const before = heard.length;
      await a.addSigningKey({ kid: 'k', alg: 'ES256', certificatePem: 'c', keyRef: 'keys/k.key', status: 'trusted', createdAt: 1, activatedAt: null }, audit);
      await vi.waitFor(() => expect(heard.slice(before)).toContain('signing_keys'));
      stop?.();
    });
  });
});
