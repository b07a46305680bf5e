/**
 * OpenID Connect single sign-on for people: the HTTP Basic password is an ID token from the
 * configured provider (`tollgate login token` prints one), the username is the account it names.
 *
 * What is verified, in order (every refusal before the signature check reads unverified claims,
 * which is safe: a forger can only get themselves refused, and garbage never reaches the network):
 * - the password is a compact JWS whose header and payload are JSON objects (else: pass, it is
 *   not ours; a JWT-shaped password with an unreadable header or payload is refused);
 * - `alg` is one of the asymmetric algorithms allowed (never `none` or HMAC);
 * - `iss` is exactly the configured issuer, `aud` names a configured audience, `exp` is not past;
 * - then jose verifies the signature against the provider's JWKS (from its discovery document,
 *   which openid-client fetches and checks)
 *   and the claims again, with the configured clock tolerance, against the realm's clock (an
 *   `iat` in the future is refused too);
 * - an `azp`, when present, is a configured audience; the token is not an access token
 *   (`typ: at+jwt`) nor a logout token (`events`);
 * - the account claim is a short string; with `requireVerifiedEmail` and the `email` account
 *   claim, `email_verified` is the JSON boolean true;
 * - the Basic username equals the account (constant-time).
 *
 * Labels: each claim of `labelClaims` that is a string or an array of strings becomes a label of
 * the same name (one value per element; other types are left out; an unverified `email` is left
 * out when `requireVerifiedEmail` is set), plus `iss` and `sub`, always. ACL rules can use them,
 * e.g. `name: "${labels:groups}/**"`.
 *
 * A provider that cannot be reached (discovery or JWKS fetch fails or times out) is a `fail`
 * (503): nothing is issued, and the client is not told its credentials are wrong.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import * as oidcClient from 'openid-client';
import type { OidcConfig } from '../../shared/config-accounts.js';
import type { Logger } from '../../shared/log.js';
import type { BasicCredentials } from '../credentials.js';
import { PASS, type AccountAuthenticator, type AuthnContext, type AuthnOutcome, type Labels } from './types.js';

/** Signature algorithms an ID token may use: asymmetric only, so a client secret can never sign one. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** Longest password looked at as a token; real ID tokens are 1-4 KiB. */
export const MAX_ID_TOKEN_LENGTH = 16 * 1024;
/** Bounds on what a claim may bring into labels. */
export const MAX_LABEL_VALUES = 100;
export const MAX_LABEL_VALUE_LENGTH = 255;
const MAX_ACCOUNT_LENGTH = 255;
const MAX_DISCOVERY_BYTES = 256 * 1024;

export interface OidcAuthenticatorOptions {
  log?: Logger;
  /** Time-out of each discovery and JWKS request (default 5 s). */
  timeoutMs?: number;
  /** How long a discovery document is used before it is fetched again (default 1 h). */
  discoveryMaxAgeMs?: number;
  /** After a failed discovery fetch, the next is not tried before this (default 5 s). */
  retryAfterMs?: number;
}

// Three base64url segments, the first starting with `eyJ` (the encoding of `{"`): a compact JWS.
// The signature may be empty so that `alg: none` tokens are recognised, and refused.
const COMPACT_JWS = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// Five segments starting the same way: a compact JWE (an encrypted ID token).
const COMPACT_JWE = /^eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

interface Discovery {
  jwksUri: string;
  fetchedAt: number;
}

type Refusal = Extract<AuthnOutcome, { decision: 'refuse' }>;
type Failure = Extract<AuthnOutcome, { decision: 'fail' }>;

const refuse = (reason: string, message: string, account?: string): Refusal =>
  account === undefined ? { decision: 'refuse', reason, message } : { decision: 'refuse', reason, message, account };
const failure = (reason: string, message: string): Failure => ({ decision: 'fail', reason, message });

class ProviderUnavailable extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Equal strings in time that depends on neither's content: both are hashed to the same length first. */
function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

function clip(s: string, n = 120): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

async function readCapped(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) throw new Error(`larger than ${max} bytes`);
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new Error(`larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Claim values as label values: a string or an array of strings, else nothing. */
function labelValues(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return [...new Set(value)];
  return undefined;
}

export function createOidcAuthenticator(config: OidcConfig, options: OidcAuthenticatorOptions = {}): AccountAuthenticator {
  const log = options.log;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const discoveryMaxAgeMs = options.discoveryMaxAgeMs ?? 60 * 60_000;
  const retryAfterMs = options.retryAfterMs ?? 5_000;
  const audiences = new Set(config.audience);
  const algorithms = new Set<string>(OIDC_ALGORITHMS);
  const tolerance = config.clockToleranceSeconds;

  let discovery: Discovery | undefined;
  let pending: Promise<Discovery> | undefined;
  let lastFailure: { at: number; error: ProviderUnavailable } | undefined;
  let jwks: { uri: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;

  /**
   * What openid-client fetches the discovery document with: no redirects, the configured time-out,
   * at most MAX_DISCOVERY_BYTES, and anything but a 200 counted as the provider being away.
   */
  const discoveryFetch = async (url: string, init: RequestInit): Promise<Response> => {
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new ProviderUnavailable('oidc_provider_unavailable', `the OIDC provider's discovery document answered HTTP ${response.status}`);
      }
      text = await readCapped(response, MAX_DISCOVERY_BYTES);
    } catch (e) {
      if (e instanceof ProviderUnavailable) throw e;
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new ProviderUnavailable(
        'oidc_provider_unavailable',
        timedOut ? `the OIDC provider's discovery document did not arrive within ${timeoutMs} ms` : `the OIDC provider cannot be reached (${clip(e instanceof Error ? e.message : String(e))})`,
      );
    }
    return new Response(text, { status: 200, headers: response.headers });
  };

  /**
   * The provider's metadata, by openid-client's discovery (OIDC Discovery 4: the well-known URL, a
   * JSON object naming exactly the configured issuer); then a jwks_uri Tollgate accepts.
   */
  async function fetchDiscovery(): Promise<Discovery> {
    let jwksUri: unknown;
    try {
      const configuration = await oidcClient.discovery(new URL(config.issuer), config.audience[0] ?? 'tollgate', undefined, undefined, {
        ...(config.issuer.startsWith('http:') ? { execute: [oidcClient.allowInsecureRequests] } : {}),
        timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
        [oidcClient.customFetch]: discoveryFetch,
      });
      jwksUri = configuration.serverMetadata().jwks_uri;
    } catch (e) {
      // openid-client wraps what the fetch threw: the provider being away is found in the causes.
      for (let cause: unknown = e; cause instanceof Error; cause = cause.cause) if (cause instanceof ProviderUnavailable) throw cause;
      // The document arrived but openid-client refused it: not JSON, not an object, another issuer.
      throw new ProviderUnavailable('oidc_discovery_invalid', `the OIDC provider's discovery document is not usable (${clip(e instanceof Error ? e.message : String(e))})`);
    }
    let parsed: URL;
    try {
      if (typeof jwksUri !== 'string') throw new Error('missing');
      parsed = new URL(jwksUri);
    } catch {
      throw new ProviderUnavailable('oidc_discovery_invalid', "the OIDC provider's discovery document has no usable jwks_uri");
    }
    // Keys fetched over plain HTTP are only acceptable when the issuer itself is plain HTTP.
    const allowed = config.issuer.startsWith('https:') ? ['https:'] : ['https:', 'http:'];
    if (!allowed.includes(parsed.protocol)) {
      throw new ProviderUnavailable('oidc_discovery_invalid', `the OIDC provider's jwks_uri must use ${allowed.join(' or ')}`);
    }
    return { jwksUri: parsed.href, fetchedAt: Date.now() };
  }

  /** The discovery document: cached, refreshed after its max age, fetched once for concurrent callers. */
  async function currentDiscovery(): Promise<Discovery> {
    const now = Date.now();
    if (discovery && now - discovery.fetchedAt < discoveryMaxAgeMs) return discovery;
    if (lastFailure && now - lastFailure.at < retryAfterMs) {
      // A stale document is still better than none while the provider is away: its keys rarely move.
      if (discovery) return discovery;
      throw lastFailure.error;
    }
    pending ??= fetchDiscovery()
      .then((d) => {
        discovery = d;
        lastFailure = undefined;
        return d;
      })
      .catch((e: unknown) => {
        const error = e instanceof ProviderUnavailable ? e : new ProviderUnavailable('oidc_provider_unavailable', 'the OIDC provider cannot be reached');
        lastFailure = { at: Date.now(), error };
        log?.warn({ issuer: config.issuer, reason: error.reason, err: error.message }, 'OIDC discovery failed');
        if (discovery) return discovery;
        throw error;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  }

  function keySet(uri: string) {
    if (!jwks || jwks.uri !== uri) {
      jwks = { uri, set: createRemoteJWKSet(new URL(uri), { timeoutDuration: timeoutMs, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }) };
    }
    return jwks.set;
  }

  /** What jose threw, as an outcome: a refusal when the token is wrong, a failure when the provider is. */
  function classify(e: unknown): Refusal | Failure {
    if (e instanceof joseErrors.JWTExpired) return refuse('oidc_token_expired', 'the ID token has expired; run tollgate login token for a fresh one');
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      if (e.claim === 'aud') return refuse('oidc_audience_mismatch', 'the ID token was issued to another client');
      if (e.claim === 'iss') return refuse('oidc_issuer_untrusted', 'the ID token was issued by another provider');
      if (e.claim === 'nbf' || e.claim === 'iat') return refuse('oidc_token_not_yet_valid', 'the ID token is not valid yet');
      return refuse('oidc_claims_invalid', `the ID token's claims are invalid (${clip(e.claim)}: ${clip(e.reason)})`);
    }
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('oidc_signature_invalid', "the ID token's signature does not verify");
    if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return refuse('oidc_signing_key_unknown', "the ID token is signed with a key the provider does not publish");
    }
    if (e instanceof joseErrors.JOSEAlgNotAllowed) return refuse('oidc_algorithm_not_allowed', "the ID token's signature algorithm is not allowed");
    if (e instanceof joseErrors.JWKSTimeout) return failure('oidc_provider_unavailable', `the OIDC provider's keys did not arrive within ${timeoutMs} ms`);
    if (e instanceof joseErrors.JWKSInvalid) return failure('oidc_provider_unavailable', "the OIDC provider's key set is invalid");
    if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JOSENotSupported || e instanceof joseErrors.JWKInvalid) {
      return refuse('oidc_token_malformed', 'the ID token is malformed');
    }
    // Anything else (network error, non-200 key set answer, unreadable key set) is the provider's side.
    return failure('oidc_provider_unavailable', "the OIDC provider's keys cannot be fetched");
  }

  async function authenticate(credentials: BasicCredentials, context: AuthnContext): Promise<AuthnOutcome> {
    const token = credentials.password;
    if (COMPACT_JWE.test(token) && token.length <= MAX_ID_TOKEN_LENGTH) {
      return refuse('oidc_token_encrypted', 'encrypted ID tokens are not supported; configure the provider to sign them only');
    }
    if (!COMPACT_JWS.test(token)) return PASS;
    if (token.length > MAX_ID_TOKEN_LENGTH) return refuse('oidc_token_too_large', `the ID token is longer than ${MAX_ID_TOKEN_LENGTH} characters`);

    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      return refuse('oidc_token_malformed', 'the password looks like a JWT but its header or claims are not readable JSON');
    }
    if (typeof header.alg !== 'string' || !algorithms.has(header.alg)) {
      return refuse('oidc_algorithm_not_allowed', `the ID token's signature algorithm ${clip(String(header.alg), 20)} is not allowed (${OIDC_ALGORITHMS.join(', ')})`);
    }
    if (typeof header.typ === 'string' && /^(application\/)?at\+jwt$/i.test(header.typ)) {
      return refuse('oidc_token_type_unsupported', 'this is an access token; the password must be the ID token');
    }
    if (typeof unverified.iss !== 'string' || !constantTimeEqual(unverified.iss, config.issuer)) {
      return refuse('oidc_issuer_untrusted', `ID tokens are accepted from ${config.issuer} only`);
    }
    const aud = typeof unverified.aud === 'string' ? [unverified.aud] : Array.isArray(unverified.aud) ? unverified.aud : [];
    if (!aud.some((a) => typeof a === 'string' && audiences.has(a))) {
      return refuse('oidc_audience_mismatch', 'the ID token was issued to another client');
    }
    const nowSeconds = Math.floor(context.now / 1000);
    if (typeof unverified.exp === 'number' && unverified.exp + tolerance <= nowSeconds) {
      return refuse('oidc_token_expired', 'the ID token has expired; run tollgate login token for a fresh one');
    }

    let payload: JWTPayload;
    try {
      const { jwksUri } = await currentDiscovery();
      ({ payload } = await jwtVerify(token, keySet(jwksUri), {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: [...OIDC_ALGORITHMS],
        clockTolerance: tolerance,
        currentDate: new Date(context.now),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (e) {
      if (e instanceof ProviderUnavailable) return failure(e.reason, e.message);
      const outcome = classify(e);
      if (outcome.decision === 'fail') log?.warn({ issuer: config.issuer, reason: outcome.reason, err: e instanceof Error ? clip(e.message) : 'unknown' }, 'OIDC key set unavailable');
      return outcome;
    }

    // A back-channel logout token has the same issuer and audience; it names an event, not a login.
    if (payload.events !== undefined) return refuse('oidc_token_type_unsupported', 'this is a logout token; the password must be the ID token');
    // jose checks iat only against a maximum age; a token from the future means a clock is wrong.
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds + tolerance) {
      return refuse('oidc_token_not_yet_valid', 'the ID token is issued in the future; check the clocks of the provider and of Tollgate');
    }
    if (payload.azp !== undefined && (typeof payload.azp !== 'string' || !audiences.has(payload.azp))) {
      return refuse('oidc_audience_mismatch', 'the ID token was issued to another client (azp)');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > MAX_ACCOUNT_LENGTH || CONTROL.test(payload.sub)) {
      return refuse('oidc_claims_invalid', "the ID token's sub claim is not a short string");
    }
    const sub = payload.sub;
    const emailVerified = payload.email_verified === true;
    const accountValue = payload[config.accountClaim];
    if (typeof accountValue !== 'string' || accountValue.length === 0 || accountValue.length > MAX_ACCOUNT_LENGTH || CONTROL.test(accountValue)) {
      return refuse('oidc_account_claim_missing', `the ID token has no usable ${clip(config.accountClaim, 64)} claim to name the account`);
    }
    const account = accountValue;
    if (config.requireVerifiedEmail && config.accountClaim === 'email' && !emailVerified) {
      return refuse('oidc_email_unverified', 'the provider has not verified this email address', account);
    }
    if (!constantTimeEqual(credentials.username, account)) {
      return refuse('username_mismatch', `the username must be the account the ID token names (its ${clip(config.accountClaim, 64)} claim)`, account);
    }

    const labels: Record<string, string[]> = {};
    for (const claim of config.labelClaims) {
      if (claim === 'email' && config.requireVerifiedEmail && !emailVerified) continue;
      const values = labelValues(payload[claim]);
      if (values === undefined) continue;
      if (values.length > MAX_LABEL_VALUES || values.some((v) => v.length > MAX_LABEL_VALUE_LENGTH)) {
        return refuse('oidc_claim_too_large', `the ID token's ${clip(claim, 64)} claim has more than ${MAX_LABEL_VALUES} values or a value longer than ${MAX_LABEL_VALUE_LENGTH} characters`, account);
      }
      const kept = values.filter((v) => v.length > 0 && !CONTROL.test(v));
      if (kept.length > 0) labels[claim] = kept;
    }
    labels.iss = [config.issuer];
    labels.sub = [sub];
    return { decision: 'accept', principal: { origin: 'oidc', account, labels: labels as Labels } };
  }

  return {
    origin: 'oidc',
    async authenticate(credentials, context) {
      try {
        return await authenticate(credentials, context);
      } catch (e) {
        // Nothing above should throw; if it does, it is a fault on this side: fail closed, token unlogged.
        log?.error({ err: e instanceof Error ? clip(e.message) : 'unknown' }, 'OIDC authenticator fault');
        return failure('oidc_internal_error', 'the OIDC authenticator could not decide');
      }
    },
    async close() {
      jwks = undefined;
      discovery = undefined;
    },
  };
}
