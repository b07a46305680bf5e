import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';

/**
 * A real OpenID Connect provider for tests: panva's oidc-provider, in this process, on a random
 * loopback port, over plain HTTP (loopback only). Its users log in without a form: the
 * interaction route finishes the login and consent for the account the test names, so a plain
 * HTTP client with a cookie jar can follow the redirects from an authorization URL to the client's
 * loopback callback, as a browser would.
 *
 * Clients (public, PKCE, native, loopback redirect URIs on any port):
 * - `tollgate-cli`, the one Tollgate is configured to accept;
 * - `other-client`, another application of the same provider;
 * - `tollgate-console`, the web console, sent back to the admin listener's callback.
 * Scopes `openid email groups offline_access`; the ID token carries `email`, `email_verified` and
 * `groups` directly (not only from userinfo) and is signed with ES256. Token revocation is on.
 */

export interface TestAccount {
  email: string;
  email_verified?: boolean;
  groups?: string[];
  /** More claims, returned for every scope. */
  extra?: Record<string, unknown>;
}

export interface OidcTestProvider {
  issuer: string;
  port: number;
  clientId: string;
  otherClientId: string;
  consoleClientId: string;
  /** Adds or replaces an account (by id, which is also its `sub`). */
  setAccount(id: string, account: TestAccount): void;
  /** Lifetime of the ID tokens issued from now on. */
  setIdTokenTtl(seconds: number): void;
  /**
   * Follows an authorization URL as a browser would, logging in as `account`, up to the redirect
   * to the client's redirect URI, which is returned (and requested too when `deliver` is set, as a
   * browser would: the CLI's loopback listener receives it).
   */
  completeLogin(authorizationUrl: string, account: string, options?: { deliver?: boolean }): Promise<{ callback: URL; delivered?: { status: number; body: string } }>;
  /** An ID token (and refresh token) for `account`, obtained through the same code flow with PKCE. */
  issueTokens(account: string, options?: { clientId?: string; scope?: string }): Promise<{ idToken: string; refreshToken?: string }>;
  stop(): Promise<void>;
}

/* Minimal shapes of the oidc-provider API used here; the package ships no type declarations. */
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface GrantConstructor {
  new (init: { accountId: string; clientId: string }): Grant;
  find(id: string): Promise<Grant | undefined>;
}
interface InteractionDetails {
  uid: string;
  grantId?: string;
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
  params: Record<string, unknown>;
  session?: { accountId?: string };
}
interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: GrantConstructor;
  on(event: string, listener: (...args: unknown[]) => void): void;
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;

const CLIENT_ID = 'tollgate-cli';
const OTHER_CLIENT_ID = 'other-client';
const CONSOLE_CLIENT_ID = 'tollgate-console';

export async function startOidcProvider(options: { accounts?: Record<string, TestAccount>; idTokenTtlSeconds?: number } = {}): Promise<OidcTestProvider> {
  // A variable specifier: the package has no types, and this keeps the compiler from asking for them.
  const specifier: string = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: ProviderConstructor };

  const accounts = new Map<string, TestAccount>(Object.entries(options.accounts ?? {}));
  let idTokenTtl = options.idTokenTtlSeconds ?? 600;

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: `test-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'ES256' };

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const nativeClient = (clientId: string, redirectPath = '/callback') => ({
    client_id: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [`http://127.0.0.1${redirectPath}`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
  });

  const provider = new Provider(issuer, {
    clients: [nativeClient(CLIENT_ID), nativeClient(OTHER_CLIENT_ID), nativeClient(CONSOLE_CLIENT_ID, '/v1/session/oidc/callback')],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'groups'],
    // Claims in the ID token itself: the realm sees only the token, never userinfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    ttl: {
      IdToken: () => idTokenTtl,
      AccessToken: 600,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    findAccount: async (_ctx: unknown, id: string) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        claims: async () => ({
          sub: id,
          email: account.email,
          email_verified: account.email_verified ?? true,
          ...(account.groups ? { groups: account.groups } : {}),
          ...account.extra,
        }),
      };
    },
  });
  // Errors are answered to the client; tests assert on what the client sees.
  provider.on('server_error', () => undefined);

  const defaultAccount = () => accounts.keys().next().value;
  const handler = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    if (!url.pathname.startsWith('/interaction/')) return handler(req, res);
    void interact(req, res, url.searchParams.get('account') ?? defaultAccount()).catch((e: unknown) => {
      res.statusCode = 500;
      res.end(`interaction failed: ${e instanceof Error ? e.message : String(e)}`);
    });
  });

  /** Finishes each prompt without asking: login as the chosen account, consent to whatever is missing. */
  async function interact(req: IncomingMessage, res: ServerResponse, accountId: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (!accountId || !accounts.has(accountId)) {
        res.statusCode = 400;
        res.end(`unknown test account ${accountId ?? '(none)'}`);
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'consent') {
      const clientId = String(details.params.client_id);
      const grant =
        (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
        new provider.Grant({ accountId: details.session?.accountId ?? '', clientId });
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    res.statusCode = 400;
    res.end(`unexpected prompt ${details.prompt.name}`);
  }

  async function completeLogin(authorizationUrl: string, account: string, opts: { deliver?: boolean } = {}) {
    const jar = new Map<string, string>();
    let next = new URL(authorizationUrl);
    for (let hop = 0; hop < 20; hop++) {
      if (next.origin !== issuer) {
        if (!opts.deliver) return { callback: next };
        const r = await fetch(next, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
        return { callback: next, delivered: { status: r.status, body: await r.text() } };
      }
      if (next.pathname.startsWith('/interaction/')) next.searchParams.set('account', account);
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const r = await fetch(next, { redirect: 'manual', headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(10_000) });
      for (const set of r.headers.getSetCookie()) {
        const [pair, ...attributes] = set.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
        if (expired || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const location = r.headers.get('location');
      const body = await r.text();
      if (r.status < 300 || r.status >= 400 || !location) {
        throw new Error(`the provider stopped at ${next.pathname} with HTTP ${r.status}: ${body.slice(0, 300)}`);
      }
      next = new URL(location, next);
    }
    throw new Error('too many redirects');
  }

  async function issueTokens(account: string, opts: { clientId?: string; scope?: string } = {}) {
    const config = await oidc.discovery(new URL(issuer), opts.clientId ?? CLIENT_ID, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const scope = opts.scope ?? 'openid email groups offline_access';
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'http://127.0.0.1:9/callback',
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
    });
    const { callback } = await completeLogin(url.href, account);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    return { idToken: tokens.id_token!, ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}) };
  }

  return {
    issuer,
    port,
    clientId: CLIENT_ID,
    otherClientId: OTHER_CLIENT_ID,
    consoleClientId: CONSOLE_CLIENT_ID,
    setAccount: (id, account) => void accounts.set(id, account),
    setIdTokenTtl: (seconds) => void (idTokenTtl = seconds),
    completeLogin,
    issueTokens,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
