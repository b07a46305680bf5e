import { decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { Keyring } from '../../authsvc/keyring.js';
import { AUDIT_ISSUED, AUDIT_REFUSED, createRealm, realmSettings, type Realm, type RealmResponse } from '../../authsvc/realm.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { activateSigningKey, revokeApiToken, setCaState, setDeviceState } from '../../shared/authority/index.js';
import { TollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { newSecret, newTokenId } from '../../shared/secrets.js';
import type { AuditRecord, DeviceAuthView, Factory, SigningKeyRecord, Store } from '../../shared/store/index.js';
import { answer } from '../support/realm.js';
import { createTestAuthority, OPERATOR, type Credentials, type TestAuthority } from '../support/store.js';

const REALM_URL = 'https://auth.example.test/token';
const SERVICE = 'tollgate-registry';
const ISSUER = 'tollgate';
const SOURCE = '192.0.2.7';

let t: TestAuthority;
let acme: Factory;

let device: DeviceAuthView;
let deviceCreds: Credentials & { expiresAt: number };
let signing: SigningKeyRecord;
let keyring: Keyring;
let realm: Realm;
const log = createLogger('test', 'silent');

beforeAll(async () => {
  t = await createTestAuthority();
  acme = await t.factory('acme');
  // A second factory exists, so "another factory" below names a real one.
  await t.factory('other');
  signing = await t.signingKey();
  device = await t.device(acme);
  deviceCreds = await t.deviceToken(device);
  keyring = await Keyring.open({ store: t.deps.store, keys: t.deps.keys, pollMs: 0 });
  realm = createRealm({ settings: realmSettings(t.config, REALM_URL), deps: t.deps, keyring, log });
});

afterAll(() => {
  keyring?.close();
  t?.cleanup();
});

type Params = Record<string, string | string[]>;

function query(params: Params): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of Array.isArray(v) ? v : [v]) q.append(k, value);
  return q;
}

const get = (params: Params, creds?: Credentials | string, r: Realm = realm) =>
  answer(r, {
    method: 'GET',
    query: query(params),
    ...(creds === undefined ? {} : { authorization: typeof creds === 'string' ? creds : basicAuthorization(creds.username, creds.secret) }),
    source: SOURCE,
  });

const post = (form: Params, r: Realm = realm) => answer(r, { method: 'POST', query: new URLSearchParams(), body: query(form).toString(), source: SOURCE });

const body = (res: RealmResponse) => JSON.parse(res.body) as Record<string, unknown>;

async function verified(token: string, audience = SERVICE) {
  const key = await importX509(signing.certificatePem, 'ES256');
  const { payload, protectedHeader } = await jwtVerify(token, key, { issuer: ISSUER, audience, typ: 'JWT', currentDate: new Date(t.deps.now()) });
  return { payload, header: protectedHeader };
}

const access = async (res: RealmResponse) => {
  expect(res.status).toBe(200);
  const b = body(res);
  return (await verified(b.token as string)).payload.access;
};

async function audits(action: string): Promise<AuditRecord[]> {
  return t.deps.store.listAudit({ action, limit: 1000 });
}

async function lastAudit(action: string): Promise<AuditRecord> {
  const all = await audits(action);
  const last = all[all.length - 1];
  if (!last) throw new Error(`no ${action} audit record`);
  return last;
}

async function expectRefused(res: RealmResponse, reason: string, actor?: string) {
  expect(res.status).toBe(401);
  expect(res.headers['WWW-Authenticate']).toBe(`Basic realm="${REALM_URL}", charset="UTF-8"`);
  expect(res.headers['Cache-Control']).toBe('no-store');
  const b = body(res) as { errors: { code: string; message: string; detail: { reason: string } }[] };
  expect(b.errors[0]?.code).toBe('UNAUTHORIZED');
  expect(b.errors[0]?.detail.reason).toBe(reason);
  const record = await lastAudit(AUDIT_REFUSED);
  expect(record.reason).toBe(reason);
  expect(record.outcome).toBe('denied');
  expect(record.source).toBe(SOURCE);
  if (actor !== undefined) expect(record.actor).toBe(actor);
}

const pull = (repo: string) => `repository:${repo}:pull`;

describe('realm: GET with a device token', () => {
  it('issues a token for pull on its own factory, verifiable with the signing certificate', async () => {
    const before = (await audits(AUDIT_ISSUED)).length;
    const res = await get({ service: SERVICE, scope: pull('acme/app'), client_id: 'docker' }, deviceCreds);
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    const b = body(res);
    // `token` alone: access_token would repeat the JWT, and aktualizr-lite reads only 1024 bytes.
    expect(Object.keys(b)).toEqual(['token', 'expires_in', 'issued_at']);
    expect(b.expires_in).toBe(t.config.authsvc.tokenTtlSeconds);
    expect(b.issued_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(b).not.toHaveProperty('refresh_token');

    const { payload, header } = await verified(b.token as string);
    // authsvc.tokenKeyHint defaults to kid: no certificate in the header.
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: signing.kid });
    expect(typeof payload.aud).toBe('string');
    expect(payload.aud).toBe(SERVICE);
    expect(payload.iss).toBe(ISSUER);
    expect(payload.sub).toBe(device.uuid);
    expect(payload.nbf!).toBeLessThan(payload.iat!);
    expect(payload.iat!).toBeLessThan(payload.exp!);
    expect(payload.exp! - payload.iat!).toBe(t.config.authsvc.tokenTtlSeconds);
    expect(new Date(b.issued_at as string).getTime() / 1000).toBe(payload.iat);
    expect(payload.access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);

    const issued = await audits(AUDIT_ISSUED);
    expect(issued).toHaveLength(before + 1);
    const record = issued[issued.length - 1]!;
    expect(record).toMatchObject({ actor: `device:${device.uuid}`, outcome: 'success', factoryId: acme.id, target: device.uuid, source: SOURCE });
    expect(record.details).toMatchObject({ scope: 'repository:acme/app:pull', jti: payload.jti, kid: signing.kid, via: 'basic', clientId: 'docker' });
  });

  it('grants only pull when push is asked', async () => {
    expect(await access(await get({ service: SERVICE, scope: 'repository:acme/app:pull,push,delete' }, deviceCreds))).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull'] },
    ]);
    expect(await access(await get({ service: SERVICE, scope: 'repository:acme/app:push' }, deviceCreds))).toEqual([]);
  });

  it('grants nothing on another factory, with 200 and never 403', async () => {
    const res = await get({ service: SERVICE, scope: [pull('other/app'), pull('acme/app')] }, deviceCreds);
    expect(await access(res)).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);
    expect(await access(await get({ service: SERVICE, scope: pull('other/app') }, deviceCreds))).toEqual([]);
  });

  it('uses the configured service when none is given, and refuses another one', async () => {
    const res = await get({ scope: pull('acme/app') }, deviceCreds);
    expect((await verified(body(res).token as string)).payload.aud).toBe(SERVICE);
    const wrong = await get({ service: 'elsewhere', scope: pull('acme/app') }, deviceCreds);
    expect(wrong.status).toBe(400);
    expect((body(wrong).errors as { code: string }[])[0]?.code).toBe('INVALID_SERVICE');
  });

  it('gives an empty access list when no scope is asked (docker login)', async () => {
    expect(await access(await get({ service: SERVICE, account: deviceCreds.username }, deviceCreds))).toEqual([]);
  });

  it('refuses parameters other than scope given twice', async () => {
    const res = await get({ service: [SERVICE, SERVICE], scope: pull('acme/app') }, deviceCreds);
    expect(res.status).toBe(400);
    expect((body(res).errors as { detail: { reason: string } }[])[0]?.detail.reason).toBe('parameter_repeated');
    expect((await get({ service: SERVICE, offline_token: ['true', 'false'] }, deviceCreds)).status).toBe(400);
  });

  it('refuses an oversized scope list with 400, never 500', async () => {
    const scopes = Array.from({ length: 65 }, (_, i) => pull(`acme/app${i}`));
    const res = await get({ service: SERVICE, scope: scopes }, deviceCreds);
    expect(res.status).toBe(400);
    expect((body(res).errors as { detail: { reason: string } }[])[0]?.detail.reason).toBe('scope_too_large');
  });
});

describe('realm: refusals', () => {
  it('refuses anonymous requests with a Basic challenge', async () => {
    await expectRefused(await get({ service: SERVICE, scope: pull('acme/app') }), 'credentials_missing', 'anonymous');
  });

  it('refuses malformed credentials and passwords that are not Tollgate secrets', async () => {
    await expectRefused(await get({ service: SERVICE }, 'Basic bm9jb2xvbg=='), 'credentials_malformed', 'anonymous');
    await expectRefused(await get({ service: SERVICE }, { username: device.uuid, secret: 'hunter2' }), 'secret_malformed', 'anonymous');
  });

  it('refuses a wrong password (a well-formed secret nobody was given)', async () => {
    const wrong = { username: device.uuid, secret: newSecret('device').secret };
    await expectRefused(await get({ service: SERVICE, scope: pull('acme/app') }, wrong), 'token_unknown', 'anonymous');
  });

  it('refuses a good secret under another username', async () => {
    const res = await get({ service: SERVICE }, { username: '00000000-0000-4000-8000-000000000000', secret: deviceCreds.secret });
    await expectRefused(res, 'username_mismatch', `device:${device.uuid}`);
    expect((await lastAudit(AUDIT_REFUSED)).factoryId).toBe(acme.id);
  });

  it('refuses a good secret under a username that is the right one shortened or lengthened', async () => {
    // The username check answers at once on a length that differs: these must still be refused.
    for (const username of [device.uuid.slice(0, -1), `${device.uuid}0`]) {
      const res = await get({ service: SERVICE }, { username, secret: deviceCreds.secret });
      await expectRefused(res, 'username_mismatch', `device:${device.uuid}`);
    }
  });

  it('refuses an expired device token', async () => {
    const d = await t.device(acme);
    const creds = await t.deviceToken(d);
    t.setNow(creds.expiresAt);
    try {
      await expectRefused(await get({ service: SERVICE, scope: pull('acme/app') }, creds), 'token_expired', `device:${d.uuid}`);
    } finally {
      t.setNow(null);
    }
    expect((await get({ service: SERVICE }, creds)).status).toBe(200);
  });

  it("refuses a revoked device's token at once", async () => {
    const d = await t.device(acme);
    const creds = await t.deviceToken(d);
    expect((await get({ service: SERVICE, scope: pull('acme/app') }, creds)).status).toBe(200);
    await setDeviceState(t.deps, OPERATOR, acme, d.uuid, 'revoked', 'stolen');
    // Revocation revokes the device's tokens; the refusal says why, under the device.
    await expectRefused(await get({ service: SERVICE, scope: pull('acme/app') }, creds), 'device_revoked', `device:${d.uuid}`);
  });

  /** A token row that survived its device's change of state (minted concurrently with it). */
  async function lateToken(d: DeviceAuthView): Promise<Credentials> {
    const { secret, secretHash } = newSecret('device');
    await t.deps.store.insertToken(
      {
        id: newTokenId(),
        kind: 'device',
        factoryId: d.factoryId,
        deviceUuid: d.uuid,
        scopes: ['containers:read'],
        description: null,
        service: null,
        subject: d.uuid,
        createdAt: t.deps.now(),
        expiresAt: t.deps.now() + 600_000,
        secretHash,
      },
      null,
    );
    return { username: d.uuid, secret };
  }

  it('refuses a token of a revoked or disabled device even if the token row survived', async () => {
    const revoked = await t.device(acme);
    await setDeviceState(t.deps, OPERATOR, acme, revoked.uuid, 'revoked', null);
    await expectRefused(await get({ service: SERVICE }, await lateToken(revoked)), 'device_revoked', `device:${revoked.uuid}`);

    const disabled = await t.device(acme);
    await setDeviceState(t.deps, OPERATOR, acme, disabled.uuid, 'disabled', null);
    await expectRefused(await get({ service: SERVICE }, await lateToken(disabled)), 'device_disabled', `device:${disabled.uuid}`);
  });

  it('refuses devices whose CA is revoked', async () => {
    const f = await t.factory('ca-revoked');
    const d = await t.device(f);
    const creds = await t.deviceToken(d);
    expect((await get({ service: SERVICE }, creds)).status).toBe(200);
    await setCaState(t.deps, OPERATOR, f, d.caId, 'revoked', 'key leaked');
    await expectRefused(await get({ service: SERVICE }, creds), 'ca_revoked', `device:${d.uuid}`);
    await expectRefused(await get({ service: SERVICE }, await lateToken(d)), 'ca_revoked', `device:${d.uuid}`);
  });

  it('refuses a revoked or expired API token', async () => {
    const api = await t.apiToken(acme, ['containers:read']);
    expect((await get({ service: SERVICE }, api)).status).toBe(200);
    await revokeApiToken(t.deps, OPERATOR, acme, api.id);
    await expectRefused(await get({ service: SERVICE }, api), 'token_revoked', `token:${api.id}`);

    const short = await t.apiToken(acme, ['containers:read'], 1);
    t.setNow(Date.now() + 86_400_000 + 1000);
    try {
      await expectRefused(await get({ service: SERVICE }, short), 'token_expired', `token:${short.id}`);
    } finally {
      t.setNow(null);
    }
  });

  it('refuses a refresh token on GET', async () => {
    const offline = body(await get({ service: SERVICE, offline_token: 'true' }, await t.apiToken(acme, ['containers:read'])));
    const refresh = offline.refresh_token as string;
    expect(refresh).toMatch(/^tgr_/);
    await expectRefused(await get({ service: SERVICE }, { username: '<token>', secret: refresh }), 'refresh_token_not_allowed');
  });

  it('never writes a secret into the audit trail', async () => {
    const all = JSON.stringify(await t.deps.store.listAudit({ limit: 1000 }));
    expect(all).not.toContain(deviceCreds.secret);
    expect(all).not.toMatch(/tg[dar]_[A-Za-z0-9_-]{49}/);
  });
});

describe('realm: API tokens', () => {
  it('grants pull and push for containers:write, on its own factory only', async () => {
    const ci = await t.apiToken(acme, ['containers:write']);
    const res = await get({ service: SERVICE, scope: ['repository:acme/app:pull,push,delete', 'repository:other/app:pull,push'] }, ci);
    expect(await access(res)).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull', 'push'] }]);
    const { payload } = await verified(body(res).token as string);
    expect(payload.sub).toBe(ci.id);
    expect((await lastAudit(AUDIT_ISSUED)).actor).toBe(`token:${ci.id}`);
  });

  it('grants the catalog only to catalog:read', async () => {
    const reader = await t.apiToken(acme, ['catalog:read']);
    const writer = await t.apiToken(acme, ['containers:write']);
    expect(await access(await get({ service: SERVICE, scope: 'registry:catalog:*' }, reader))).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    expect(await access(await get({ service: SERVICE, scope: 'registry:catalog:*' }, writer))).toEqual([]);
    expect(await access(await get({ service: SERVICE, scope: 'registry:catalog:*' }, deviceCreds))).toEqual([]);
  });

  it('grants nothing for scopes that carry no registry right', async () => {
    const admin = await t.apiToken(acme, ['devices:write', 'tokens:write']);
    expect(await access(await get({ service: SERVICE, scope: 'repository:acme/app:pull' }, admin))).toEqual([]);
  });
});

describe('realm: POST (OAuth2)', () => {
  const oauthError = (res: RealmResponse) => body(res).error;

  it('answers the password grant, with a refresh token when asked', async () => {
    const ci = await t.apiToken(acme, ['containers:write']);
    const res = await post({
      grant_type: 'password',
      service: SERVICE,
      client_id: 'tollgate-test',
      access_type: 'offline',
      scope: 'repository:acme/app:pull,push repository:other/x:pull',
      username: ci.username,
      password: ci.secret,
    });
    expect(res.status).toBe(200);
    expect(res.headers['Cache-Control']).toBe('no-store');
    const b = body(res);
    expect(b.scope).toBe('repository:acme/app:pull,push');
    expect(b.expires_in).toBe(t.config.authsvc.tokenTtlSeconds);
    expect(typeof b.issued_at).toBe('string');
    expect(b.refresh_token).toMatch(/^tgr_/);
    expect((await verified(b.access_token as string)).payload.access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull', 'push'] }]);
    // The refresh token works for the same subject and its scopes; a revoked API token takes it along.
    const refreshed = await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'x', refresh_token: b.refresh_token as string, scope: 'repository:acme/app:push' });
    expect(refreshed.status).toBe(200);
    expect(body(refreshed).scope).toBe('repository:acme/app:push');
    expect((await verified(body(refreshed).access_token as string)).payload.sub).toBe(ci.id);
    await revokeApiToken(t.deps, OPERATOR, acme, ci.id);
    const after = await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'x', refresh_token: b.refresh_token as string });
    expect(after.status).toBe(400);
    expect(oauthError(after)).toBe('invalid_grant');
    expect((await lastAudit(AUDIT_REFUSED)).reason).toBe('parent_token_revoked');
  });

  it('answers the password grant without a refresh token unless asked', async () => {
    const res = await post({ grant_type: 'password', service: SERVICE, client_id: 'x', username: deviceCreds.username, password: deviceCreds.secret, scope: pull('acme/app') });
    expect(res.status).toBe(200);
    expect(body(res)).not.toHaveProperty('refresh_token');
    expect(body(res).scope).toBe('repository:acme/app:pull');
  });

  it('refuses a bad password with 401 invalid_grant', async () => {
    const res = await post({ grant_type: 'password', service: SERVICE, client_id: 'x', username: deviceCreds.username, password: newSecret('device').secret });
    expect(res.status).toBe(401);
    expect(oauthError(res)).toBe('invalid_grant');
    expect((await lastAudit(AUDIT_REFUSED)).reason).toBe('token_unknown');
    const refreshAsPassword = await post({ grant_type: 'password', service: SERVICE, client_id: 'x', username: '<token>', password: newSecret('refresh').secret });
    expect(refreshAsPassword.status).toBe(401);
  });

  it('gives a device no refresh token, and binds an API token\'s to its subject and service', async () => {
    const d = await t.device(acme);
    const creds = await t.deviceToken(d);
    const deviceOffline = await get({ service: SERVICE, scope: pull('acme/app'), offline_token: 'true', client_id: 'docker' }, creds);
    expect(deviceOffline.status).toBe(200);
    expect(body(deviceOffline)).not.toHaveProperty('refresh_token');

    const ci = await t.apiToken(acme, ['containers:read']);
    const offline = await get({ service: SERVICE, scope: pull('acme/app'), offline_token: 'true', client_id: 'docker' }, ci);
    const refresh = body(offline).refresh_token as string;
    expect(refresh).toMatch(/^tgr_/);
    const issued = await lastAudit(AUDIT_ISSUED);
    expect(issued.details?.refreshTokenId).toMatch(/^tok_/);

    const res = await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'docker', refresh_token: refresh, scope: 'repository:acme/app:pull,push' });
    expect(res.status).toBe(200);
    const b = body(res);
    expect(b.refresh_token).toBe(refresh);
    expect(b.scope).toBe('repository:acme/app:pull');
    const { payload } = await verified(b.access_token as string);
    expect(payload.sub).toBe(ci.id);
    expect((await lastAudit(AUDIT_ISSUED)).details).toMatchObject({ via: 'refresh_token', refreshTokenId: issued.details?.refreshTokenId });

    // Issued for this service: a realm serving another one refuses it.
    const elsewhere = createRealm({ settings: { ...realmSettings(t.config, REALM_URL), service: 'other-registry' }, deps: t.deps, keyring, log });
    const wrongService = await post({ grant_type: 'refresh_token', service: 'other-registry', client_id: 'docker', refresh_token: refresh }, elsewhere);
    expect(wrongService.status).toBe(400);
    expect(oauthError(wrongService)).toBe('invalid_grant');
    expect((await lastAudit(AUDIT_REFUSED)).reason).toBe('service_mismatch');
    const unknownService = await post({ grant_type: 'refresh_token', service: 'other-registry', client_id: 'docker', refresh_token: refresh });
    expect(unknownService.status).toBe(400);
  });

  it('refuses expired and unknown refresh tokens with 400 invalid_grant', async () => {
    const refresh = body(await get({ service: SERVICE, offline_token: 'true' }, await t.apiToken(acme, ['containers:read']))).refresh_token as string;
    t.setNow(Date.now() + t.config.authsvc.refreshTokenTtlSeconds * 1000 + 1000);
    try {
      const res = await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'x', refresh_token: refresh });
      expect(res.status).toBe(400);
      expect((await lastAudit(AUDIT_REFUSED)).reason).toBe('token_expired');
    } finally {
      t.setNow(null);
    }
    for (const bogus of [newSecret('refresh').secret, deviceCreds.secret, 'not-a-token']) {
      const res = await post({ grant_type: 'refresh_token', service: SERVICE, client_id: 'x', refresh_token: bogus });
      expect(res.status).toBe(400);
      expect(oauthError(res)).toBe('invalid_grant');
    }
  });

  it('refuses unsupported grants and missing fields', async () => {
    const unsupported = await post({ grant_type: 'client_credentials', service: SERVICE, client_id: 'x' });
    expect(unsupported.status).toBe(400);
    expect(oauthError(unsupported)).toBe('unsupported_grant_type');
    const forms: Params[] = [
      { service: SERVICE, client_id: 'x' },
      { grant_type: 'password', service: SERVICE },
      { grant_type: 'password', client_id: 'x' },
      { grant_type: 'password', service: SERVICE, client_id: 'x', username: 'u' },
      { grant_type: 'refresh_token', service: SERVICE, client_id: 'x' },
      { grant_type: ['password', 'password'], service: SERVICE, client_id: 'x' },
    ];
    for (const form of forms) {
      const res = await post(form);
      expect(res.status, JSON.stringify(form)).toBe(400);
      expect(oauthError(res)).toBe('invalid_request');
    }
  });
});

describe('realm: availability', () => {
  it('answers 503 with Retry-After when the store is busy', async () => {
    const busy = (): never => {
      throw new TollgateError('unavailable', 'store_busy', 'the store is busy; retry shortly');
    };
    const store = new Proxy(t.deps.store, {
      get: (target, prop, receiver) => (prop === 'findTokenBySecretHash' ? busy : Reflect.get(target, prop, receiver)),
    }) as Store;
    const r = createRealm({ settings: realmSettings(t.config, REALM_URL), deps: { store, now: t.deps.now }, keyring, log });
    const res = await get({ service: SERVICE }, deviceCreds, r);
    expect(res.status).toBe(503);
    expect(res.headers['Retry-After']).toBe('1');
    const p = await post({ grant_type: 'password', service: SERVICE, client_id: 'x', username: deviceCreds.username, password: deviceCreds.secret }, r);
    expect(p.status).toBe(503);
    expect(body(p).error).toBe('temporarily_unavailable');
  });

  it('answers 503 when no signing key is active', async () => {
    const empty = await Keyring.open({ store: { listSigningKeys: async () => [], changeVersion: async () => 0, subscribeChanges: () => null }, keys: t.deps.keys, pollMs: 0 });
    expect(empty.active).toBeNull();
    expect(empty.problem).toBe('no signing key is active');
    const r = createRealm({ settings: realmSettings(t.config, REALM_URL), deps: t.deps, keyring: empty, log });
    const res = await get({ service: SERVICE }, deviceCreds, r);
    expect(res.status).toBe(503);
    expect(res.headers['Retry-After']).toBe('1');
    expect((body(res).errors as { detail: { reason: string } }[])[0]?.detail.reason).toBe('signing_key_unavailable');
  });

  it('refuses methods other than GET and POST', async () => {
    const res = await answer(realm, { method: 'PUT', query: new URLSearchParams(), source: null });
    expect(res.status).toBe(405);
    expect(res.headers.Allow).toBe('GET, POST');
  });
});

describe('authsvc server', () => {
  let svc: RunningAuthsvc;
  let base: string;

  beforeAll(async () => {
    svc = await startAuthsvc({ config: t.config, deps: t.deps, log, keyringPollMs: 50 });
    base = `http://127.0.0.1:${svc.port}`;
  });
  afterAll(async () => {
    await svc?.close();
  });

  /** A raw request, so that methods and bodies fetch would refuse can be sent too. */
  function raw(method: string, path: string, headers: Record<string, string | number> = {}, payload?: string | Buffer) {
    return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: svc.port, method, path, headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  it('serves the realm over HTTP with the bound port in its challenge', async () => {
    expect(svc.realmUrl).toBe(`${base}/token`);
    const ok = await fetch(`${base}/token?service=${SERVICE}&scope=${pull('acme/app')}`, {
      headers: { authorization: basicAuthorization(deviceCreds.username, deviceCreds.secret) },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const anonymous = await fetch(`${base}/token?service=${SERVICE}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(`Basic realm="${base}/token", charset="UTF-8"`);
  });

  it('accepts form POSTs and refuses other media types and oversized bodies', async () => {
    const form = new URLSearchParams({ grant_type: 'password', service: SERVICE, client_id: 'x', username: deviceCreds.username, password: deviceCreds.secret });
    const ok = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: form });
    expect(ok.status).toBe(200);
    const asJson = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(asJson.status).toBe(415);
    const latin1 = await raw('POST', '/token', { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, 'a=b');
    expect(latin1.status).toBe(415);
    const big = await raw('POST', '/token', { 'content-type': 'application/x-www-form-urlencoded' }, `scope=${'a'.repeat(9000)}`);
    expect(big.status).toBe(413);
    const chunked = await raw('POST', '/token', { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' }, Buffer.alloc(9000, 0x61));
    expect(chunked.status).toBe(413);
    const notUtf8 = await raw('POST', '/token', { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from([0x61, 0x3d, 0xff]));
    expect(notUtf8.status).toBe(400);
  });

  it('refuses an oversized query string, unknown routes and wrong methods', async () => {
    const long = await raw('GET', `/token?service=${SERVICE}&x=${'a'.repeat(8200)}`);
    expect(long.status).toBe(414);
    const missing = await raw('GET', '/nope');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'route_not_found' } });
    const put = await raw('PUT', '/token');
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, POST');
    const postJwks = await raw('POST', '/jwks.json');
    expect(postJwks.status).toBe(405);
    expect(postJwks.headers.allow).toBe('GET, HEAD');
  });

  it('serves health, readiness and the JWKS, and follows key rotation', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', kid: signing.kid });
    for (const path of ['/jwks.json', '/.well-known/jwks.json']) {
      const jwks = (await (await fetch(`${base}${path}`)).json()) as { keys: { kid: string; use: string; alg: string; x5c: string[] }[] };
      expect(jwks.keys.map((k) => k.kid)).toContain(signing.kid);
      expect(jwks.keys[0]).toMatchObject({ use: 'sig', alg: 'ES256' });
    }

    const next = await t.signingKey({ activate: true });
    const deadline = Date.now() + 5000;
    while (svc.keyring.active?.kid !== next.kid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(svc.keyring.active?.kid).toBe(next.kid);
    const res = await fetch(`${base}/token?service=${SERVICE}`, { headers: { authorization: basicAuthorization(deviceCreds.username, deviceCreds.secret) } });
    const token = ((await res.json()) as { token: string }).token;
    expect(decodeProtectedHeader(token).kid).toBe(next.kid);
    expect(decodeJwt(token).sub).toBe(device.uuid);
    const jwks = (await (await fetch(`${base}/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([next.kid, signing.kid]);
    // Back to the first key for the tests that verify against it.
    await activateSigningKey(t.deps, OPERATOR, signing.kid);
    await keyring.check();
  });
});
