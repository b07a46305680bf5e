import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../admin/app.js';
import { AdminService } from '../../admin/service.js';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { Keyring } from '../../authsvc/keyring.js';
import { createRealm, realmSettings, type Realm } from '../../authsvc/realm.js';
import { revokeApiToken } from '../../shared/authority/index.js';
import { createLogger } from '../../shared/log.js';
import { MIGRATIONS } from '../../shared/store/migrations.js';
import { SqliteStore } from '../../shared/store/index.js';
import { answer } from '../support/realm.js';
import { createTestAuthority, type TestAuthority } from '../support/store.js';

/**
 * What an API token can make of the tokens it creates: a child never outlives its parent, and
 * revoking a token revokes every token it created, and theirs, at the admin API and at the realm.
 */

const SERVICE = 'tollgate-registry';
let t: TestAuthority;
let app: ReturnType<typeof createAdminApp>;
let keyring: Keyring;
let realm: Realm;
const clock = Date.now();

interface Created {
  id: string;
  username: string;
  secret: string;
  expiresAt: string | null;
  parentId?: string | null;
}

beforeAll(async () => {
  t = await createTestAuthority();
  t.setNow(clock);
  await t.factory('acme');
  await t.signingKey();
  const service = new AdminService(t.deps);
  app = createAdminApp({ service, log: createLogger('admin', 'silent'), enrollment: { gatewayCa: '', gateway: 'https://gateway.test' } });
  keyring = await Keyring.open({ store: t.deps.store, keys: t.deps.keys, pollMs: 0 });
  realm = createRealm({ settings: realmSettings(t.config, 'https://auth.test/token'), deps: t.deps, keyring });
});

afterAll(() => {
  keyring?.close();
  t?.cleanup();
});

const SCOPES = ['tokens:write', 'containers:read'];

async function create(by: { secret: string } | null, body: Record<string, unknown>): Promise<Created> {
  if (by === null) {
    const made = await t.apiToken((await t.deps.store.getFactoryByName('acme'))!, (body.scopes as string[]) ?? SCOPES, body.days as number | undefined);
    return { id: made.id, username: made.username, secret: made.secret, expiresAt: null };
  }
  const res = await request(app).post('/v1/factories/acme/tokens').set('Authorization', `Bearer ${by.secret}`).send({ scopes: SCOPES, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Created;
}

const pull = async (token: { username: string; secret: string }) => {
  const res = await answer(realm, {
    method: 'GET',
    query: new URLSearchParams({ service: SERVICE, scope: 'repository:acme/app:pull' }),
    authorization: basicAuthorization(token.username, token.secret),
    source: '192.0.2.1',
  });
  return { status: res.status, reason: (JSON.parse(res.body) as { errors?: { detail: { reason: string } }[] }).errors?.[0]?.detail.reason };
};
const whoami = async (token: { secret: string }) => (await request(app).get('/v1/whoami').set('Authorization', `Bearer ${token.secret}`)).status;

describe('tokens created by tokens', () => {
  it('never outlive the token that created them, whatever they ask', async () => {
    const parent = await create(null, { days: 1 });
    const parentExpiry = (await t.deps.store.getToken(parent.id))!.expiresAt!;
    const forever = await create(parent, {});
    const longer = await create(parent, { days: 365 });
    const shorter = await create(parent, { days: 1 });
    for (const child of [forever, longer]) expect(Date.parse(child.expiresAt!)).toBe(parentExpiry);
    expect(Date.parse(shorter.expiresAt!)).toBeLessThanOrEqual(parentExpiry);
    // And they record who made them.
    expect([forever.parentId, longer.parentId]).toEqual([parent.id, parent.id]);

    t.setNow(parentExpiry + 1000);
    try {
      for (const child of [forever, longer, shorter]) {
        expect(await pull(child)).toEqual({ status: 401, reason: 'token_expired' });
        expect(await whoami(child)).toBe(401);
      }
    } finally {
      t.setNow(clock);
    }
  });

  it('are revoked with the token that created them, down to the last descendant', async () => {
    const root = await create(null, {});
    const child = await create(root, {});
    const grandchild = await create(child, {});
    const sibling = await create(null, {});
    for (const token of [child, grandchild]) expect((await pull(token)).status).toBe(200);

    const operator = await create(null, { scopes: ['tokens:write'] });
    const revoked = await request(app).delete(`/v1/factories/acme/tokens/${root.id}`).set('Authorization', `Bearer ${operator.secret}`);
    expect(revoked.status).toBe(204);

    for (const token of [root, child, grandchild]) {
      expect(await pull(token)).toEqual({ status: 401, reason: 'token_revoked' });
      expect(await whoami(token)).toBe(401);
    }
    expect((await pull(sibling)).status).toBe(200);
    // Each revocation is in the audit trail, the descendants' naming the revocation that took them.
    const audit = await t.deps.store.listAudit({ action: 'token.revoked', limit: 100 });
    expect(audit.find((a) => a.target === grandchild.id)).toMatchObject({ outcome: 'success', details: { revokedWith: root.id } });
  });

  it('are revoked with their parent also when the parent is revoked by the operator', async () => {
    const parent = await create(null, {});
    const child = await create(parent, {});
    await revokeApiToken(t.deps, { actor: 'operator' }, (await t.deps.store.getFactoryByName('acme'))!, parent.id);
    expect(await pull(child)).toEqual({ status: 401, reason: 'token_revoked' });
  });
});

describe('token parents in the store', () => {
  it('are kept across a restart', async () => {
    const parent = await create(null, {});
    const child = await create(parent, {});
    const again = new SqliteStore(t.config.databasePath);
    try {
      expect((await again.getToken(child.id))?.parentId).toBe(parent.id);
      expect((await again.getToken(parent.id))?.parentId).toBeNull();
    } finally {
      again.close();
    }
  });

  it('come with a migration that leaves the tokens of an older store without a parent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-lineage-'));
    const path = join(dir, 'old.db');
    try {
      const old = new Database(path);
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const m of MIGRATIONS.filter((m) => m.version <= 4)) {
        old.exec(m.sqlite);
        old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 0);
      }
      old.exec(`INSERT INTO factories VALUES ('f1', 'acme', 0);
        INSERT INTO api_tokens(id, secret_hash, kind, factory_id, scopes, subject, created_at) VALUES ('tok_aaaaaaaaaaaaaaaa', 'h', 'api', 'f1', '[]', 'tok_aaaaaaaaaaaaaaaa', 0);`);
      old.close();
      const upgraded = new SqliteStore(path);
      try {
        expect(await upgraded.schemaVersion()).toBe(MIGRATIONS.at(-1)!.version);
        expect((await upgraded.getToken('tok_aaaaaaaaaaaaaaaa'))?.parentId).toBeNull();
      } finally {
        upgraded.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
