import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../admin/app.js';
import { ConsoleAuth } from '../../admin/console-auth.js';
import { AdminService } from '../../admin/service.js';
import { consoleAuth } from '../../admin/server.js';
import { SessionStore } from '../../admin/session.js';
import { configSchema, loadConfig } from '../../shared/config.js';
import { CONSOLE_CODE_TTL_MS, createConsoleSigninCode } from '../../shared/authority/index.js';
import { createLogger } from '../../shared/log.js';
import { tableSnapshot } from '../support/db-snapshot.js';
import { createTestAuthority, OPERATOR, type TestAuthority } from '../support/store.js';

/**
 * Console sessions over HTTP: what the cookie is, CSRF on every state change, idle expiry, logout,
 * one-time operator codes, and that a session is only ever as good as the token behind it.
 */

const IDLE_MS = 15 * 60_000;
let a: TestAuthority;
let now = Date.now();
let dir: string;

function appWith(secure: boolean) {
  const service = new AdminService(a.deps);
  const consoleAuth = new ConsoleAuth({ deps: a.deps, service, sessions: new SessionStore(IDLE_MS, () => now), secure });
  return createAdminApp({
    service,
    log: createLogger('console-test', 'silent'),
    enrollment: { gatewayCa: 'x', gateway: 'https://gateway.test' },
    console: consoleAuth,
    consoleDir: dir,
  });
}

let app: ReturnType<typeof createAdminApp>;
let writer: { id: string; secret: string };

/** Signs in with `secret`; returns the cookie to send back and the session's CSRF token. */
async function signIn(secret: string, on = app) {
  const res = await request(on).post('/v1/session').send({ token: secret });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const cookie = res.headers['set-cookie']![0]!;
  return { cookie: cookie.split(';')[0]!, header: cookie, csrf: res.body.csrfToken as string, body: res.body };
}

beforeAll(async () => {
  a = await createTestAuthority();
  a.setNow(now);
  dir = mkdtempSync(join(tmpdir(), 'tollgate-console-dist-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><html lang="en"><title>console</title><script type="module" src="/assets/app-1.js"></script></html>');
  writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1);');
  const factory = await a.factory('acme');
  await a.device(factory);
  writer = await a.apiToken(factory, ['devices:read', 'devices:write']);
  app = appWith(false);
});

afterAll(() => {
  a.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('console sessions', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie, Secure with the __Host- prefix over TLS', async () => {
    const plain = await signIn(writer.secret);
    expect(plain.header).toMatch(/^tollgate_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(plain.body).toMatchObject({ kind: 'token', identity: `token:${writer.id}`, factory: 'acme', scopes: ['devices:read', 'devices:write'], idleSeconds: IDLE_MS / 1000 });
    expect(plain.header).not.toContain(writer.secret);

    const tls = await signIn(writer.secret, appWith(true));
    expect(tls.header).toMatch(/^__Host-tollgate_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  });

  it('needs the CSRF token on every state change, and then applies the same scopes as the API', async () => {
    const s = await signIn(writer.secret);
    const uuid = (await request(app).get('/v1/factories/acme/devices').set('Cookie', s.cookie)).body.items[0].uuid as string;
    const before = tableSnapshot(a.config.databasePath);
    for (const csrf of [undefined, 'forged', '']) {
      const req = request(app).post(`/v1/factories/acme/devices/${uuid}/disable`).set('Cookie', s.cookie).send({});
      const res = await (csrf === undefined ? req : req.set('X-CSRF-Token', csrf));
      expect([res.status, res.body.error.code]).toEqual([403, 'csrf_token_invalid']);
    }
    expect(tableSnapshot(a.config.databasePath)).toEqual(before);
    const ok = await request(app).post(`/v1/factories/acme/devices/${uuid}/disable`).set('Cookie', s.cookie).set('X-CSRF-Token', s.csrf).send({ reason: 'console' });
    expect([ok.status, ok.body.state]).toEqual([200, 'disabled']);
    const trail = await a.deps.store.listAudit({ target: uuid, action: 'device.disabled' });
    expect(trail[0]).toMatchObject({ actor: `token:${writer.id}`, reason: 'console' });

    // Another session's CSRF token is not this one's.
    const other = await signIn(writer.secret);
    const crossed = await request(app).post(`/v1/factories/acme/devices/${uuid}/enable`).set('Cookie', s.cookie).set('X-CSRF-Token', other.csrf).send({});
    expect(crossed.body.error.code).toBe('csrf_token_invalid');

    const reader = await a.apiToken(await a.deps.store.getFactoryByName('acme').then((f) => f!), ['devices:read']);
    const r = await signIn(reader.secret);
    const refused = await request(app).post(`/v1/factories/acme/devices/${uuid}/enable`).set('Cookie', r.cookie).set('X-CSRF-Token', r.csrf).send({});
    expect([refused.status, refused.body.error.code]).toEqual([403, 'scope_missing']);
  });

  it('ends after the idle time, and at logout', async () => {
    const s = await signIn(writer.secret);
    now += IDLE_MS - 1000;
    expect((await request(app).get('/v1/session').set('Cookie', s.cookie)).status).toBe(200);
    now += IDLE_MS - 1000;
    // Still alive: the last request restarted the idle clock.
    expect((await request(app).get('/v1/session').set('Cookie', s.cookie)).status).toBe(200);
    now += IDLE_MS + 1;
    const idle = await request(app).get('/v1/session').set('Cookie', s.cookie);
    expect([idle.status, idle.body.error.code]).toEqual([401, 'session_expired']);
    expect(idle.headers['set-cookie']![0]).toMatch(/^tollgate_session=; .*Max-Age=0/);

    const t = await signIn(writer.secret);
    expect((await request(app).delete('/v1/session').set('Cookie', t.cookie)).body.error.code).toBe('csrf_token_invalid');
    const out = await request(app).delete('/v1/session').set('Cookie', t.cookie).set('X-CSRF-Token', t.csrf);
    expect(out.status).toBe(204);
    expect((await request(app).get('/v1/factories/acme/devices').set('Cookie', t.cookie)).body.error.code).toBe('session_expired');
    const actions = (await a.deps.store.listAudit({ actor: `token:${writer.id}` })).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['console.signed_in', 'console.signed_out']));
  });

  it('ends when the token it was opened with is revoked', async () => {
    const factory = (await a.deps.store.getFactoryByName('acme'))!;
    const temp = await a.apiToken(factory, ['devices:read']);
    const s = await signIn(temp.secret);
    expect((await request(app).get('/v1/whoami').set('Cookie', s.cookie)).status).toBe(200);
    await request(app).delete(`/v1/factories/acme/tokens/${temp.id}`).set('Authorization', `Bearer ${(await a.apiToken(factory, ['tokens:write'])).secret}`);
    const after = await request(app).get('/v1/whoami').set('Cookie', s.cookie);
    expect([after.status, after.body.error.code]).toEqual([401, 'token_revoked']);
    expect((await request(app).get('/v1/whoami').set('Cookie', s.cookie)).body.error.code).toBe('session_expired');
  });

  it('refuses bad sign-ins precisely and audits them', async () => {
    const cases: [unknown, number, string][] = [
      [{ token: 'tga_nope' }, 401, 'token_invalid'],
      [{}, 400, 'sign_in_source'],
      [{ token: writer.secret, code: 'x' }, 400, 'sign_in_source'],
      [{ token: writer.secret, extra: 1 }, 400, 'body_unknown_key'],
      [{ code: 'A'.repeat(32) }, 401, 'signin_code_invalid'],
    ];
    for (const [body, status, code] of cases) {
      const res = await request(app).post('/v1/session').send(body as object);
      expect([res.status, res.body.error.code, res.headers['set-cookie']]).toEqual([status, code, undefined]);
    }
    expect((await a.deps.store.listAudit({ action: 'console.signin_refused' })).map((r) => r.reason)).toContain('token_invalid');
  });

  it('signs the operator in once with a code from tollgate console, within its lifetime', async () => {
    const { code } = await createConsoleSigninCode(a.deps, OPERATOR);
    const first = await request(app).post('/v1/session').send({ code });
    expect([first.status, first.body.kind, first.body.identity, first.body.factory]).toEqual([201, 'operator', 'operator', null]);
    const again = await request(app).post('/v1/session').send({ code });
    expect([again.status, again.body.error.code]).toEqual([401, 'signin_code_invalid']);

    const stale = await createConsoleSigninCode(a.deps, OPERATOR);
    a.setNow(now + CONSOLE_CODE_TTL_MS + 1);
    expect((await request(app).post('/v1/session').send({ code: stale.code })).body.error.code).toBe('signin_code_invalid');
    a.setNow(now);
    const cookie = first.headers['set-cookie']![0]!.split(';')[0]!;
    expect((await request(app).get('/v1/factories').set('Cookie', cookie)).body.items.map((f: { name: string }) => f.name)).toEqual(['acme']);
  });
});

describe('console configuration', () => {
  it('refuses OIDC console sign-in without the realm\'s provider, and roles that grant unknown scopes', async () => {
    const config = loadConfig({ env: {}, cwd: dir, file: null });
    const service = new AdminService(a.deps);
    const withRoles = { ...config, admin: { ...config.admin, console: { idleMinutes: 30, oidc: { roles: [] } } } };
    await expect(consoleAuth(withRoles, a.deps, service)).rejects.toThrow(/admin.console.oidc needs authsvc.oidc/);
    const bad = configSchema.safeParse({ admin: { console: { oidc: { roles: [{ value: 'x', factory: 'acme', scopes: ['catalog:read'] }] } } } });
    expect(bad.success).toBe(false);
    const good = configSchema.parse({ admin: { console: { oidc: { roles: [{ value: 'admins', factory: 'acme', scopes: ['devices:read'] }] } } } });
    expect(good.admin.console.oidc!.roles[0]).toEqual({ claim: 'groups', value: 'admins', factory: 'acme', scopes: ['devices:read'] });
    expect(good.admin.console.idleMinutes).toBe(30);
  });
});

describe('the console files', () => {
  it('serves the console with a strict CSP, deep links as index.html, and keeps /v1 answers JSON', async () => {
    const page = await request(app).get('/devices/3f2c8a52-6b1e-4c59-9a54-0e0f7d1c2b3a');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe');
    expect(page.headers['x-frame-options']).toBe('DENY');
    const script = await request(app).get('/assets/app-1.js');
    expect([script.headers['content-type'], script.headers['cache-control']]).toEqual(['text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    const missing = await request(app).get('/v1/nothing').set('Authorization', `Bearer ${writer.secret}`);
    expect([missing.status, missing.body.error.code]).toEqual([404, 'route_not_found']);
    expect((await request(app).get('/assets/none.js')).status).toBe(404);
    expect((await request(app).get('/../../etc/passwd')).status).toBe(404);
    expect((await request(app).get('/devices/not-a-uuid')).status).toBe(404);
    expect((await request(app).get('/signin')).status).toBe(200);
    expect((await request(app).post('/devices')).status).toBe(404);
  });
});
