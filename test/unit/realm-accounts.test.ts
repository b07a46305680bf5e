import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acl } from '../../authsvc/acl.js';
import { createStaticUserAuthenticator, hashPassword } from '../../authsvc/authn/static-users.js';
import type { AccountAuthenticator, AuthorizationHook, AuthorizationQuestion } from '../../authsvc/authn/types.js';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { Keyring } from '../../authsvc/keyring.js';
import { AUDIT_ISSUED, AUDIT_REFUSED, createRealm, realmSettings, type Realm, type RealmResponse } from '../../authsvc/realm.js';
import { createLogger } from '../../shared/log.js';
import { answer } from '../support/realm.js';
import { createTestAuthority, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * The realm's account path with stand-in authenticators (each authenticator has its own tests):
 * the chain order, what each outcome becomes on the wire and in the audit trail, the ACL grant and
 * the authorization hook's narrowing.
 */

const REALM_URL = 'https://auth.example.test/token';
const SERVICE = 'tollgate-registry';
const log = createLogger('test', 'silent');

/** Accepts `<name>:open-sesame`, refuses other passwords of names it knows, passes the rest. */
function passwordBook(origin: 'user' | 'hook', names: string[], labels: Record<string, string[]> = {}): AccountAuthenticator & { calls: number } {
  const auth = {
    origin,
    calls: 0,
    async authenticate({ username, password }: { username: string; password: string }) {
      auth.calls++;
      if (!names.includes(username)) return { decision: 'pass' as const };
      if (password !== 'open-sesame') return { decision: 'refuse' as const, reason: 'password_invalid', message: 'no', account: username };
      return { decision: 'accept' as const, principal: { origin, account: username, labels } };
    },
  };
  return auth;
}

const failing: AccountAuthenticator = {
  origin: 'hook',
  async authenticate({ username }) {
    return username === 'flaky' ? { decision: 'fail', reason: 'hook_timeout', message: 'the authentication hook did not answer in time' } : { decision: 'pass' };
  },
};

let t: TestAuthority;
let keyring: Keyring;
let realm: Realm;
let users: ReturnType<typeof passwordBook>;
let questions: AuthorizationQuestion[];
let device: Credentials;

beforeAll(async () => {
  t = await createTestAuthority();
  const acme = await t.factory('acme');
  await t.signingKey();
  device = await t.deviceToken(await t.device(acme));
  keyring = await Keyring.open({ store: t.deps.store, keys: t.deps.keys, pollMs: 0 });
  users = passwordBook('user', ['alice', 'admin']);
  questions = [];
  const hook: AuthorizationHook = {
    async authorize(question) {
      questions.push(question);
      // The site's rule: nobody pushes to release/ from here, and it tries (in vain) to widen.
      return question.name.startsWith('release/') ? ['pull', 'delete'] : [...question.actions, 'delete'];
    },
  };
  realm = createRealm({
    settings: realmSettings(t.config, REALM_URL),
    deps: t.deps,
    keyring,
    log,
    accounts: {
      authenticators: [users, failing],
      acl: new Acl([
        { match: { account: 'admin' }, actions: ['*'] },
        { match: { name: '${account}/**' }, actions: ['pull', 'push'] },
        { match: { name: 'release/**' }, actions: ['pull', 'push'] },
      ]),
      authorizationHook: hook,
    },
  });
});

afterAll(() => {
  keyring?.close();
  t?.cleanup();
});

const get = (username: string, password: string, scopes: string[], extra: Record<string, string> = {}) => {
  const q = new URLSearchParams({ service: SERVICE, ...extra });
  for (const s of scopes) q.append('scope', s);
  return answer(realm, { method: 'GET', query: q, authorization: basicAuthorization(username, password), source: '192.0.2.9' });
};
const body = (res: RealmResponse) => JSON.parse(res.body) as Record<string, unknown>;
const lastAudit = async (action: string) => (await t.deps.store.listAudit({ action, limit: 10_000 })).at(-1);

describe('realm: accounts', () => {
  it('issues an account the ACL grant, narrowed by the authorization hook, with the account as sub', async () => {
    questions.length = 0;
    const res = await get('alice', 'open-sesame', ['repository:alice/tools:pull,push', 'repository:release/app:pull,push', 'repository:bob/x:pull']);
    expect(res.status).toBe(200);
    const claims = decodeJwt(body(res).token as string);
    expect(claims.sub).toBe('alice');
    expect(claims.access).toEqual([
      { type: 'repository', name: 'alice/tools', actions: ['pull', 'push'] },
      { type: 'repository', name: 'release/app', actions: ['pull'] },
    ]);
    // The hook was asked only about what the ACL allowed, and its extra `delete` was ignored.
    expect(questions.map((q) => [q.name, q.actions])).toEqual([
      ['alice/tools', ['pull', 'push']],
      ['release/app', ['pull', 'push']],
    ]);
    expect(await lastAudit(AUDIT_ISSUED)).toMatchObject({ actor: 'user:alice', outcome: 'success', factoryId: null });
  });

  it('refuses a wrong password with 401, audited under the account it named', async () => {
    const res = await get('alice', 'guess', ['repository:alice/tools:pull']);
    expect(res.status).toBe(401);
    expect(res.headers['WWW-Authenticate']).toMatch(/^Basic realm=/);
    expect(body(res)).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'no', detail: { reason: 'password_invalid' } }] });
    expect(await lastAudit(AUDIT_REFUSED)).toMatchObject({ actor: 'user:alice', reason: 'password_invalid' });
    expect(JSON.stringify(await lastAudit(AUDIT_REFUSED))).not.toContain('guess');
  });

  it('refuses credentials nobody claims as credentials_unknown', async () => {
    const before = users.calls;
    const res = await get('mallory', 'open-sesame', []);
    expect(res.status).toBe(401);
    expect(body(res)).toMatchObject({ errors: [{ detail: { reason: 'credentials_unknown' } }] });
    expect(users.calls).toBe(before + 1);
    // Nobody vouched for the name, but it is what was presented: the audit trail keeps it.
    expect(await lastAudit(AUDIT_REFUSED)).toMatchObject({ actor: 'account:mallory', reason: 'credentials_unknown' });
  });

  it('answers 503 and issues nothing when an authenticator cannot decide (fail closed)', async () => {
    const res = await get('flaky', 'whatever', ['repository:flaky/x:pull']);
    expect(res.status).toBe(503);
    expect(res.headers['Retry-After']).toBe('1');
    expect(body(res)).toMatchObject({ errors: [{ code: 'UNAVAILABLE', detail: { reason: 'hook_timeout' } }] });
    expect(res.body).not.toContain('token');
    expect(await lastAudit(AUDIT_REFUSED)).toMatchObject({ actor: 'hook:flaky', reason: 'hook_timeout' });
  });

  it('never asks the account authenticators about Tollgate secrets', async () => {
    const before = users.calls;
    const res = await get(device.username, device.secret, ['repository:acme/app:pull']);
    expect(res.status).toBe(200);
    expect(users.calls).toBe(before);
  });

  it('gives accounts no refresh token: their credentials are checked on every request', async () => {
    const res = await get('admin', 'open-sesame', ['repository:any/thing:pull'], { offline_token: 'true' });
    expect(res.status).toBe(200);
    expect(body(res).refresh_token).toBeUndefined();
    const form = new URLSearchParams({ grant_type: 'password', username: 'admin', password: 'open-sesame', service: SERVICE, client_id: 'test', access_type: 'offline', scope: 'repository:any/thing:push' });
    const posted = await answer(realm, { method: 'POST', query: new URLSearchParams(), body: form.toString(), source: null });
    expect(posted.status).toBe(200);
    expect(body(posted)).toMatchObject({ token_type: 'Bearer', scope: 'repository:any/thing:push' });
    expect(body(posted).refresh_token).toBeUndefined();
  });

  it('refuses a wrong password on the password grant in the OAuth2 dialect', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: 'admin', password: 'nope', service: SERVICE, client_id: 'test' });
    const res = await answer(realm, { method: 'POST', query: new URLSearchParams(), body: form.toString(), source: null });
    expect(res.status).toBe(401);
    expect(body(res)).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('realm: static users followed by an authentication hook', () => {
  let hookRealm: Realm;
  let hookCalls: string[];

  beforeAll(async () => {
    hookCalls = [];
    const staticUsers = createStaticUserAuthenticator({ alice: { password: await hashPassword('correct horse'), labels: {} } }, { refuseUnknown: false });
    // The site's hook: knows henry, refuses names starting with "banned", has its own "alice" too.
    const hook: AccountAuthenticator = {
      origin: 'hook',
      async authenticate({ username, password }) {
        hookCalls.push(username);
        if (username.startsWith('banned')) return { decision: 'refuse', reason: 'hook_denied', message: 'the authentication hook refused these credentials', account: username };
        if ((username === 'henry' || username === 'alice') && password === 'hook-pass') return { decision: 'accept', principal: { origin: 'hook', account: username, labels: {} } };
        return { decision: 'pass' };
      },
    };
    hookRealm = createRealm({
      settings: realmSettings(t.config, REALM_URL),
      deps: t.deps,
      keyring,
      log,
      accounts: { authenticators: [staticUsers, hook], acl: new Acl([{ match: { origin: 'user', name: '${account}/**' }, actions: ['pull'] }, { match: { origin: 'hook', name: '${account}/**' }, actions: ['pull'] }]) },
    });
  });

  const ask = (username: string, password: string) =>
    answer(hookRealm, { method: 'GET', query: new URLSearchParams({ service: SERVICE, scope: `repository:${username}/app:pull` }), authorization: basicAuthorization(username, password), source: '192.0.2.9' });

  it('answers a known name with a wrong password exactly as an unknown name, after asking the hook about both', async () => {
    hookCalls.length = 0;
    const unknown = await ask('mallory', 'guess');
    const known = await ask('alice', 'guess');
    expect(unknown.status).toBe(401);
    expect({ status: known.status, headers: known.headers, body: known.body }).toEqual({ status: unknown.status, headers: unknown.headers, body: unknown.body });
    expect(hookCalls).toEqual(['mallory', 'alice']);
    expect(await lastAudit(AUDIT_REFUSED)).toMatchObject({ actor: 'user:alice', reason: 'credentials_unknown' });
    // ... and the same for a name the hook refuses, known to static users or not.
    const refusedUnknown = await ask('banned-1', 'guess');
    expect(refusedUnknown.status).toBe(401);
    expect(body(refusedUnknown)).toMatchObject({ errors: [{ detail: { reason: 'hook_denied' } }] });
  });

  it('never lets the hook accept a static user\'s name with a password static users refused', async () => {
    const res = await ask('alice', 'hook-pass');
    expect(res.status).toBe(401);
    expect(body(res)).toMatchObject({ errors: [{ detail: { reason: 'password_invalid' } }] });
    expect(await lastAudit(AUDIT_REFUSED)).toMatchObject({ actor: 'user:alice', reason: 'password_invalid' });
    expect((await ask('henry', 'hook-pass')).status).toBe(200);
    expect((await ask('alice', 'correct horse')).status).toBe(200);
  });
});
