import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { SignJWT, generateKeyPair } from 'jose';
import { createServer as createHttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcAuthenticator } from '../../authsvc/authn/oidc.js';
import type { AccountAuthenticator, AuthnOutcome } from '../../authsvc/authn/types.js';
import { oidcSchema, type OidcConfig } from '../../shared/config-accounts.js';
import { createLogger } from '../../shared/log.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc-provider.js';

/**
 * The OIDC authenticator against a real provider (oidc-provider): real ID tokens, a real
 * discovery document and JWKS over loopback HTTP, jose verifying. Nothing is mocked.
 */

const ALICE = { email: 'alice@example.com', groups: ['factory-a', 'qa'] };
const ctx = (now = Date.now()) => ({ now, source: '127.0.0.1', service: 'tollgate-registry' });
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function reason(outcome: AuthnOutcome): string {
  return outcome.decision === 'refuse' || outcome.decision === 'fail' ? `${outcome.decision}:${outcome.reason}` : outcome.decision;
}

describe('OIDC authenticator', () => {
  let provider: OidcTestProvider;
  let stranger: OidcTestProvider;
  let config: OidcConfig;
  let authn: AccountAuthenticator;
  let aliceToken: string;
  const logLines: string[] = [];
  const log = createLogger(
    'authsvc',
    'debug',
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );
  const made: AccountAuthenticator[] = [];
  const authenticator = (overrides: Partial<OidcConfig> = {}, options: { timeoutMs?: number } = {}) => {
    const a = createOidcAuthenticator(oidcSchema.parse({ issuer: provider.issuer, audience: [provider.clientId], ...overrides }), { log, ...options });
    made.push(a);
    return a;
  };

  beforeAll(async () => {
    provider = await startOidcProvider({
      accounts: {
        alice: ALICE,
        bob: { email: 'bob@example.com', email_verified: false, groups: ['factory-b'] },
        carol: { email: 'carol@example.com', groups: Array.from({ length: 101 }, (_, i) => `g${i}`) },
        dave: { email: 'dave@example.com', groups: ['ok'], extra: { department: 42, team: ['x', 7] } },
      },
    });
    stranger = await startOidcProvider({ accounts: { alice: ALICE } });
    config = oidcSchema.parse({ issuer: provider.issuer, audience: [provider.clientId], clockToleranceSeconds: 0 });
    authn = createOidcAuthenticator(config, { log });
    aliceToken = (await provider.issueTokens('alice')).idToken;
  });

  afterAll(async () => {
    await Promise.all([authn?.close?.(), ...made.map((a) => a.close?.())]);
    await Promise.all([provider?.stop(), stranger?.stop()]);
  });

  it('accepts a valid ID token: the account is the email, labels come from the claims', async () => {
    const out = await authn.authenticate({ username: 'alice@example.com', password: aliceToken }, ctx());
    expect(out).toEqual({
      decision: 'accept',
      principal: {
        origin: 'oidc',
        account: 'alice@example.com',
        labels: { email: ['alice@example.com'], groups: ['factory-a', 'qa'], iss: [provider.issuer], sub: ['alice'] },
      },
    });
  });

  it('passes credentials that are not a compact JWS, so the next authenticator decides', async () => {
    for (const password of ['hunter2', 'tga_abcdef.secret', 'a.b.c', 'eyJ', 'eyJhbGciOiJFUzI1NiJ9.!!.x', 'eyJh.b', '']) {
      expect(reason(await authn.authenticate({ username: 'alice@example.com', password }, ctx())), password).toBe('pass');
    }
  });

  it('refuses JWT-looking passwords that are malformed, unsigned, HMAC-signed, encrypted, access tokens or too large', async () => {
    const cases: [string, string][] = [
      ['eyJub3QganNvbg.eyJzdWIiOiJ4In0.c2ln', 'refuse:oidc_token_malformed'], // header is not JSON
      [`${b64url({ alg: 'ES256' })}.bm90IGpzb24.c2ln`, 'refuse:oidc_token_malformed'], // payload is not JSON
      [`${b64url({ alg: 'ES256' })}.${b64url(['array'])}.c2ln`, 'refuse:oidc_token_malformed'],
      [`${b64url({ alg: 'none' })}.${b64url({ iss: provider.issuer, aud: provider.clientId, sub: 'alice', email: 'alice@example.com' })}.`, 'refuse:oidc_algorithm_not_allowed'],
      [`${b64url({ typ: 'JWT' })}.${b64url({ iss: provider.issuer })}.c2ln`, 'refuse:oidc_algorithm_not_allowed'],
      [await new SignJWT({ email: 'alice@example.com', email_verified: true }).setProtectedHeader({ alg: 'HS256' }).setIssuer(provider.issuer).setAudience(provider.clientId).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode('a'.repeat(32))), 'refuse:oidc_algorithm_not_allowed'],
      [`${b64url({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.a.b.c.d`, 'refuse:oidc_token_encrypted'],
      [`${b64url({ alg: 'ES256', typ: 'at+jwt' })}.${b64url({ iss: provider.issuer, aud: provider.clientId, sub: 'alice' })}.c2ln`, 'refuse:oidc_token_type_unsupported'],
      [`${b64url({ alg: 'ES256' })}.${'A'.repeat(17_000)}.c2ln`, 'refuse:oidc_token_too_large'],
    ];
    for (const [password, expected] of cases) {
      expect(reason(await authn.authenticate({ username: 'alice@example.com', password }, ctx())), password.slice(0, 60)).toBe(expected);
    }
  });

  it('refuses a token from another provider before any network call (untrusted issuer)', async () => {
    const foreign = (await stranger.issueTokens('alice')).idToken;
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: foreign }, ctx()))).toBe('refuse:oidc_issuer_untrusted');
    // The same answer from an authenticator whose own provider cannot be reached: nothing was fetched.
    const unreachable = createOidcAuthenticator(oidcSchema.parse({ issuer: 'http://127.0.0.1:9', audience: [provider.clientId] }), { log });
    expect(reason(await unreachable.authenticate({ username: 'alice@example.com', password: foreign }, ctx()))).toBe('refuse:oidc_issuer_untrusted');
  });

  it('refuses a token issued to another client of the same provider (wrong audience)', async () => {
    const other = (await provider.issueTokens('alice', { clientId: provider.otherClientId })).idToken;
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: other }, ctx()))).toBe('refuse:oidc_audience_mismatch');
    // Accepted where that client is a configured audience: the refusal was the audience, nothing else.
    const both = authenticator({ audience: [provider.clientId, provider.otherClientId] });
    expect(reason(await both.authenticate({ username: 'alice@example.com', password: other }, ctx()))).toBe('accept');
  });

  it('refuses a tampered signature, tampered claims, and a token signed with a key the provider does not publish', async () => {
    const [h, p, s] = aliceToken.split('.') as [string, string, string];
    const mid = Math.floor(s.length / 2);
    const flipped = `${s.slice(0, mid)}${s[mid] === 'A' ? 'B' : 'A'}${s.slice(mid + 1)}`;
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: `${h}.${p}.${flipped}` }, ctx()))).toBe('refuse:oidc_signature_invalid');

    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const promoted = b64url({ ...claims, groups: ['factory-a', 'qa', 'admins'] });
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: `${h}.${promoted}.${s}` }, ctx()))).toBe('refuse:oidc_signature_invalid');

    // A forger's own key, under the provider's key id and issuer.
    const { privateKey } = await generateKeyPair('ES256');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string };
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: header.kid }).sign(privateKey);
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: forged }, ctx()))).toBe('refuse:oidc_signature_invalid');
    const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'not-published' }).sign(privateKey);
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: unknownKid }, ctx()))).toBe('refuse:oidc_signing_key_unknown');
  });

  it('refuses an expired ID token, and judges expiry by the realm clock', async () => {
    // Two seconds: the first check below must not straddle the expiry, whatever the sub-second phase.
    provider.setIdTokenTtl(2);
    let short: string;
    try {
      short = (await provider.issueTokens('alice')).idToken;
    } finally {
      provider.setIdTokenTtl(600);
    }
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: short }, ctx()))).toBe('accept');
    await new Promise((r) => setTimeout(r, 3100));
    const expired = await authn.authenticate({ username: 'alice@example.com', password: short }, ctx());
    expect(reason(expired)).toBe('refuse:oidc_token_expired');
    // Within the configured tolerance the same token still passes; the realm's clock is the one used.
    expect(reason(await authenticator({ clockToleranceSeconds: 60 }).authenticate({ username: 'alice@example.com', password: short }, ctx()))).toBe('accept');
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: aliceToken }, ctx(Date.now() + 3_600_000)))).toBe('refuse:oidc_token_expired');
    expect(reason(await authn.authenticate({ username: 'alice@example.com', password: aliceToken }, ctx(Date.now() - 3_600_000)))).toBe('refuse:oidc_token_not_yet_valid');
  });

  it('refuses a username that is not the account the token names, in constant time and exactly', async () => {
    for (const username of ['bob@example.com', 'Alice@example.com', 'alice@example.com ', 'alice']) {
      const out = await authn.authenticate({ username, password: aliceToken }, ctx());
      expect(out).toMatchObject({ decision: 'refuse', reason: 'username_mismatch', account: 'alice@example.com' });
    }
  });

  it('refuses an unverified email as the account, and accepts it when the account claim is sub', async () => {
    const bob = (await provider.issueTokens('bob')).idToken;
    expect(reason(await authn.authenticate({ username: 'bob@example.com', password: bob }, ctx()))).toBe('refuse:oidc_email_unverified');
    const bySub = authenticator({ accountClaim: 'sub' });
    const out = await bySub.authenticate({ username: 'bob', password: bob }, ctx());
    // Accepted as `bob`, but the unverified address is not a label an ACL rule could trust.
    expect(out).toEqual({ decision: 'accept', principal: { origin: 'oidc', account: 'bob', labels: { groups: ['factory-b'], iss: [provider.issuer], sub: ['bob'] } } });
    const lax = authenticator({ accountClaim: 'sub', requireVerifiedEmail: false });
    expect(await lax.authenticate({ username: 'bob', password: bob }, ctx())).toMatchObject({ decision: 'accept', principal: { labels: { email: ['bob@example.com'] } } });
  });

  it('takes only strings and arrays of strings into labels, within bounds', async () => {
    const dave = (await provider.issueTokens('dave')).idToken;
    const withExtras = authenticator({ labelClaims: ['email', 'groups', 'department', 'team', 'absent'] });
    const out = await withExtras.authenticate({ username: 'dave@example.com', password: dave }, ctx());
    expect(out).toEqual({
      decision: 'accept',
      principal: { origin: 'oidc', account: 'dave@example.com', labels: { email: ['dave@example.com'], groups: ['ok'], iss: [provider.issuer], sub: ['dave'] } },
    });
    const carol = (await provider.issueTokens('carol')).idToken;
    expect(reason(await authn.authenticate({ username: 'carol@example.com', password: carol }, ctx()))).toBe('refuse:oidc_claim_too_large');
    // An account claim that is not a string names nobody.
    const byDepartment = authenticator({ accountClaim: 'department' });
    expect(reason(await byDepartment.authenticate({ username: '42', password: dave }, ctx()))).toBe('refuse:oidc_account_claim_missing');
  });

  it('fails (never refuses) when the provider is down, and when it does not answer in time', async () => {
    const down = await startOidcProvider({ accounts: { alice: ALICE } });
    const token = (await down.issueTokens('alice')).idToken;
    const warm = createOidcAuthenticator(oidcSchema.parse({ issuer: down.issuer, audience: [down.clientId] }), { log });
    const a = createOidcAuthenticator(oidcSchema.parse({ issuer: down.issuer, audience: [down.clientId] }), { log });
    made.push(warm, a);
    expect(reason(await warm.authenticate({ username: 'alice@example.com', password: token }, ctx()))).toBe('accept');
    await down.stop();
    // Discovery and keys already fetched keep verifying while the provider is away ...
    expect(reason(await warm.authenticate({ username: 'alice@example.com', password: token }, ctx()))).toBe('accept');
    // ... and without them nothing can be verified: 503, not 401.
    expect(await a.authenticate({ username: 'alice@example.com', password: token }, ctx())).toMatchObject({ decision: 'fail', reason: 'oidc_provider_unavailable' });
    // Asked again at once, it fails again without hammering the provider.
    expect(reason(await a.authenticate({ username: 'alice@example.com', password: token }, ctx()))).toBe('fail:oidc_provider_unavailable');

    // A provider that accepts the connection and never answers.
    const sockets = new Set<import('node:net').Socket>();
    const silent: Server = createServer((s) => void sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    try {
      const issuer = `http://127.0.0.1:${port}`;
      const claims = { iss: issuer, aud: 'tollgate-cli', sub: 'alice', email: 'alice@example.com', email_verified: true };
      const { privateKey } = await generateKeyPair('ES256');
      const hanging = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);
      const h = createOidcAuthenticator(oidcSchema.parse({ issuer, audience: ['tollgate-cli'] }), { log, timeoutMs: 300 });
      made.push(h);
      const started = Date.now();
      expect(reason(await h.authenticate({ username: 'alice@example.com', password: hanging }, ctx()))).toBe('fail:oidc_provider_unavailable');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('refuses to use a discovery document that names another issuer, or no jwks_uri, or is too large', async () => {
    let document: (issuer: string) => string = () => '{}';
    const server: Server = createHttpServer((req, res) => {
      if (req.url !== '/.well-known/openid-configuration') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(document(`http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const issuer = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
      const { privateKey } = await generateKeyPair('ES256');
      const token = await new SignJWT({ iss: issuer, aud: 'tollgate-cli', sub: 'alice', email: 'alice@example.com', email_verified: true })
        .setProtectedHeader({ alg: 'ES256', kid: 'k' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const attempt = async () => {
        const a = createOidcAuthenticator(oidcSchema.parse({ issuer, audience: ['tollgate-cli'] }), { log, retryAfterMs: 0 });
        made.push(a);
        return reason(await a.authenticate({ username: 'alice@example.com', password: token }, ctx()));
      };
      document = () => JSON.stringify({ issuer: 'https://someone-else.example', jwks_uri: 'https://someone-else.example/jwks' });
      expect(await attempt()).toBe('fail:oidc_discovery_invalid');
      document = (iss) => JSON.stringify({ issuer: iss });
      expect(await attempt()).toBe('fail:oidc_discovery_invalid');
      document = (iss) => JSON.stringify({ issuer: iss, jwks_uri: `${iss}/jwks`, padding: 'x'.repeat(300 * 1024) });
      expect(await attempt()).toBe('fail:oidc_provider_unavailable');
    } finally {
      server.close();
    }
  });

  it('accepts plain-http issuers on loopback only, in the configuration', () => {
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.com', audience: ['tollgate'] }).success).toBe(true);
    expect(oidcSchema.safeParse({ issuer: 'http://127.0.0.1:8080', audience: ['tollgate'] }).success).toBe(true);
    expect(oidcSchema.safeParse({ issuer: 'http://idp.example.com', audience: ['tollgate'] }).success).toBe(false);
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.com', audience: [] }).success).toBe(false);
  });

  it('never logs a token', async () => {
    // Every path above logged through `log`; no token, nor any part of a signature, is in it.
    const all = logLines.join('');
    expect(all).toContain('OIDC discovery failed');
    expect(all).not.toContain(aliceToken.split('.')[2]!);
    expect(all).not.toContain(aliceToken.split('.')[1]!.slice(0, 40));
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});
