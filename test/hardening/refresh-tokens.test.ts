import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { createLogger } from '../../shared/log.js';
import { newSecret, newTokenId } from '../../shared/secrets.js';
import { SqliteStore, type DeviceAuthView } from '../../shared/store/index.js';
import { MIGRATIONS } from '../../shared/store/migrations.js';
import { createTestAuthority, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * What a stolen one-hour device token is worth at the realm: never a longer-lived credential. Devices
 * get no refresh tokens (their credential is their key: the gateway mints a fresh token whenever the
 * helper asks), however they ask; API tokens still do, never outliving the token they came from.
 */

const SERVICE = 'tollgate-registry';
let t: TestAuthority;
let svc: RunningAuthsvc;
let device: DeviceAuthView;
let deviceCreds: Credentials;

beforeAll(async () => {
  t = await createTestAuthority({ config: { limits: { enabled: false } } });
  const acme = await t.factory('acme');
  await t.signingKey();
  device = await t.device(acme);
  deviceCreds = await t.deviceToken(device);
  svc = await startAuthsvc({ config: t.config, deps: t.deps, log: createLogger('authsvc', 'silent') });
});

afterAll(async () => {
  await svc?.close();
  t?.cleanup();
});

const basic = async (creds: Credentials, query: string) => {
  const res = await fetch(`${svc.realmUrl}?service=${SERVICE}&scope=repository:acme/app:pull&${query}`, { headers: { authorization: basicAuthorization(creds.username, creds.secret) } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const form = async (fields: Record<string, string>) => {
  const res = await fetch(svc.realmUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ service: SERVICE, client_id: 'docker', ...fields }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('refresh tokens', () => {
  it('are never handed to a device, on GET with offline_token or on the password grant with access_type=offline', async () => {
    const get = await basic(deviceCreds, 'offline_token=true');
    expect(get.status).toBe(200);
    expect(get.body).not.toHaveProperty('refresh_token');
    const post = await form({ grant_type: 'password', username: deviceCreds.username, password: deviceCreds.secret, access_type: 'offline' });
    expect(post.status).toBe(200);
    expect(post.body).not.toHaveProperty('refresh_token');
    expect((await t.deps.store.listTokens(device.factoryId, { kind: 'refresh' })).filter((r) => r.deviceUuid !== null)).toEqual([]);
  });

  it('of a device, made by an earlier version, are refused', async () => {
    const { secret, secretHash } = newSecret('refresh');
    await t.deps.store.insertToken(
      { id: newTokenId(), kind: 'refresh', factoryId: device.factoryId, deviceUuid: device.uuid, scopes: ['containers:read'], description: null, service: SERVICE, subject: device.uuid, createdAt: Date.now(), expiresAt: Date.now() + 30 * 86_400_000, secretHash },
      null,
    );
    const refreshed = await form({ grant_type: 'refresh_token', refresh_token: secret });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
    const refused = (await t.deps.store.listAudit({ action: 'realm.refused', limit: 1000 })).at(-1);
    expect(refused).toMatchObject({ actor: `device:${device.uuid}`, reason: 'device_refresh_not_supported' });
  });

  it('of a device are deleted when an older store is upgraded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-refresh-'));
    try {
      const path = join(dir, 'old.db');
      const old = new Database(path);
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const m of MIGRATIONS.filter((m) => m.version < 8)) {
        old.exec(m.sqlite);
        old.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 0);
      }
      old.exec(`INSERT INTO factories VALUES ('f1', 'acme', 0);
        INSERT INTO device_cas(id, factory_id, kind, certificate_pem, fingerprint256, subject_cn, not_after, state, key_ref, created_at) VALUES ('c1', 'f1', 'external', 'x', 'fp-ca', 'CA', 0, 'active', NULL, 0);
        INSERT INTO devices(uuid, factory_id, ca_id, state, is_test, certificate_pem, certificate_fingerprint, public_key_fingerprint, not_after, created_at, updated_at) VALUES ('d1', 'f1', 'c1', 'active', 0, 'x', 'fp-d', 'pk', 0, 0, 0);
        INSERT INTO api_tokens(id, secret_hash, kind, factory_id, device_uuid, scopes, subject, created_at) VALUES ('tok_device_refresh', 'h1', 'refresh', 'f1', 'd1', '[]', 'd1', 0);
        INSERT INTO api_tokens(id, secret_hash, kind, factory_id, scopes, subject, created_at) VALUES ('tok_api_refresh_1', 'h2', 'refresh', 'f1', '[]', 'tok_api', 0);`);
      old.close();
      const upgraded = new SqliteStore(path);
      try {
        expect(await upgraded.getToken('tok_device_refresh')).toBeNull();
        expect(await upgraded.getToken('tok_api_refresh_1')).not.toBeNull();
      } finally {
        upgraded.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are still given to an API token, and never outlive it', async () => {
    const api = await t.apiToken((await t.deps.store.getFactoryByName('acme'))!, ['containers:read'], 1);
    const got = await basic(api, 'offline_token=true');
    expect(got.body.refresh_token).toMatch(/^tgr_/);
    const stored = (await t.deps.store.listTokens(device.factoryId, { kind: 'refresh' })).find((r) => r.subject === api.id);
    expect(stored?.expiresAt).toBe((await t.deps.store.getToken(api.id))?.expiresAt);
    expect((await form({ grant_type: 'refresh_token', refresh_token: got.body.refresh_token as string })).status).toBe(200);
  });
});
