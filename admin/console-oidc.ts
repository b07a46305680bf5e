import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { AccountAuthenticator, Labels } from '../authsvc/authn/types.js';
import { TollgateError, forbidden, unauthenticated } from '../shared/errors.js';
import type { ConsoleRole } from '../shared/config.js';

/**
 * Console sign-in through the realm's OpenID Connect provider: the authorization code flow with
 * PKCE, the browser sent back to the admin listener. openid-client runs the protocol; the ID token
 * it yields is then verified by the realm's own OIDC authenticator (issuer, audience, signature
 * against the provider's keys, verified email), so a person is recognised here exactly as the
 * registry realm recognises them. Their labels (claims such as `groups`) are mapped to one factory
 * and its scopes by the first matching `admin.console.oidc.roles` rule; no rule, no access.
 */

/** A person the provider vouched for, and what the roles grant them. */
export interface ConsoleSignIn {
  /** How the audit trail names them, e.g. `oidc:alice@example.com`. */
  identity: string;
  factory: string;
  scopes: string[];
}

export interface ConsoleOidcOptions {
  issuer: string;
  clientId: string;
  /** Where the provider sends the browser back: <admin URL>/v1/session/oidc/callback. */
  redirectUri: string;
  /** The realm's OIDC authenticator, accepting ID tokens issued to `clientId`. */
  authenticator: AccountAuthenticator;
  accountClaim: string;
  roles: readonly ConsoleRole[];
  now?: () => number;
}

interface PendingLogin {
  verifier: string;
  nonce: string;
  startedAt: number;
}

/** A sign-in must come back from the provider within this long. */
const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

function describe(e: unknown): string {
  const text =
    e instanceof oidc.ResponseBodyError || e instanceof oidc.AuthorizationResponseError
      ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`
      : e instanceof Error
        ? e.message
        : 'unknown error';
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** The first role whose claim (a label of the ID token) holds its value. */
export function roleFor(roles: readonly ConsoleRole[], labels: Labels): ConsoleRole | undefined {
  return roles.find((r) => (labels[r.claim] ?? []).includes(r.value));
}

export class ConsoleOidc {
  private configuration: Promise<oidc.Configuration> | undefined;
  /** By state: what the callback needs to finish the code flow. Single use. */
  private readonly pending = new Map<string, PendingLogin>();
  private readonly now: () => number;

  constructor(private readonly options: ConsoleOidcOptions) {
    this.now = options.now ?? Date.now;
  }

  private discover(): Promise<oidc.Configuration> {
    const url = new URL(this.options.issuer);
    this.configuration ??= oidc
      .discovery(url, this.options.clientId, undefined, oidc.None(), {
        ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
        timeout: 10,
      })
      .catch((e: unknown) => {
        this.configuration = undefined;
        throw new TollgateError('unavailable', 'oidc_provider_unavailable', `cannot read the OpenID configuration of ${this.options.issuer}: ${describe(e)}`);
      });
    return this.configuration;
  }

  /** Starts a sign-in: the provider URL to send the browser to, and the state that binds it. */
  async start(): Promise<{ url: string; state: string }> {
    const config = await this.discover();
    const now = this.now();
    for (const [state, p] of this.pending) if (now - p.startedAt > PENDING_TTL_MS) this.pending.delete(state);
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = randomBytes(32).toString('base64url');
    const nonce = oidc.randomNonce();
    this.pending.set(state, { verifier, nonce, startedAt: now });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.options.redirectUri,
      response_type: 'code',
      scope: 'openid email groups',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state };
  }

  /**
   * Finishes a sign-in from the provider's redirect (`search`: its query string). `browserState` is
   * the state the browser's sign-in cookie carries: the callback must come back to the browser that
   * started it.
   */
  async finish(search: string, browserState: string | undefined): Promise<ConsoleSignIn> {
    // The redirect URI as registered: openid-client sends it again with the code, and the provider compares.
    const callback = new URL(this.options.redirectUri);
    callback.search = search;
    const state = callback.searchParams.get('state') ?? '';
    const pending = this.pending.get(state);
    if (!pending || browserState === undefined || browserState !== state) {
      throw unauthenticated('oidc_state_mismatch', 'this sign-in was not started by this browser, or it took too long; sign in again');
    }
    this.pending.delete(state);
    if (this.now() - pending.startedAt > PENDING_TTL_MS) throw unauthenticated('oidc_state_mismatch', 'the sign-in took too long; sign in again');
    const config = await this.discover();
    let idToken: string | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.verifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      idToken = tokens.id_token;
    } catch (e) {
      throw unauthenticated('oidc_sign_in_failed', `the provider did not sign you in (${describe(e)})`);
    }
    if (!idToken) throw unauthenticated('oidc_sign_in_failed', 'the provider returned no ID token');
    return this.recognise(idToken);
  }

  /** Verifies the ID token as the realm does, then maps the person's labels to a factory and scopes. */
  private async recognise(idToken: string): Promise<ConsoleSignIn> {
    const claimed = decodeJwt(idToken)[this.options.accountClaim];
    const outcome = await this.options.authenticator.authenticate(
      { username: typeof claimed === 'string' ? claimed : '', password: idToken },
      { now: this.now(), source: null, service: 'tollgate-console' },
    );
    if (outcome.decision === 'fail') throw new TollgateError('unavailable', outcome.reason, outcome.message);
    if (outcome.decision !== 'accept') {
      throw unauthenticated(outcome.decision === 'refuse' ? outcome.reason : 'oidc_token_invalid', outcome.decision === 'refuse' ? outcome.message : 'the ID token was not recognised');
    }
    const { account, labels } = outcome.principal;
    const role = roleFor(this.options.roles, labels);
    if (!role) throw forbidden('console_role_missing', `${account} is signed in, but no console role maps their claims to a factory`);
    return { identity: `oidc:${account}`, factory: role.factory, scopes: [...role.scopes] };
  }
}
