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
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { OidcConfig } from '../../shared/config-accounts.js';
import { constantTimeEqual } from '../../shared/secrets.js';
import type { BasicCredentials } from '../credentials.js';
import { clip, OidcProvider, ProviderUnavailable, type OidcProviderOptions } from './oidc-provider.js';
import { PASS, type AccountAuthenticator, type AuthnContext, type AuthnOutcome, type Labels } from './types.js';

/** Signature algorithms an ID token may use: asymmetric only, so a client secret can never sign one. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** Longest password looked at as a token; real ID tokens are 1-4 KiB. */
export const MAX_ID_TOKEN_LENGTH = 16 * 1024;
/** Bounds on what a claim may bring into labels. */
export const MAX_LABEL_VALUES = 100;
export const MAX_LABEL_VALUE_LENGTH = 255;
const MAX_ACCOUNT_LENGTH = 255;

export type OidcAuthenticatorOptions = OidcProviderOptions;

// Three base64url segments, the first starting with `eyJ` (the encoding of `{"`): a compact JWS.
// The signature may be empty so that `alg: none` tokens are recognised, and refused.
const COMPACT_JWS = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// Five segments starting the same way: a compact JWE (an encrypted ID token).
const COMPACT_JWE = /^eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const ALGORITHMS: ReadonlySet<string> = new Set(OIDC_ALGORITHMS);

type Refusal = Extract<AuthnOutcome, { decision: 'refuse' }>;
type Failure = Extract<AuthnOutcome, { decision: 'fail' }>;

const refuse = (reason: string, message: string, account?: string): Refusal =>
  account === undefined ? { decision: 'refuse', reason, message } : { decision: 'refuse', reason, message, account };
const failure = (reason: string, message: string): Failure => ({ decision: 'fail', reason, message });

/** Claim values as label values: a string or an array of strings, else nothing. */
function labelValues(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return [...new Set(value)];
  return undefined;
}

/** What jose threw, as an outcome: a refusal when the token is wrong, a failure when the provider is. */
function classify(e: unknown, timeoutMs: number): Refusal | Failure {
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

/**
 * The checks on unverified claims, before anything reaches the network: null when the token may go
 * on to signature verification, else the outcome (PASS: not a JWT, so not ours).
 */
function screen(token: string, config: OidcConfig, now: number): AuthnOutcome | null {
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
  if (typeof header.alg !== 'string' || !ALGORITHMS.has(header.alg)) {
    return refuse('oidc_algorithm_not_allowed', `the ID token's signature algorithm ${clip(String(header.alg), 20)} is not allowed (${OIDC_ALGORITHMS.join(', ')})`);
  }
  if (typeof header.typ === 'string' && /^(application\/)?at\+jwt$/i.test(header.typ)) {
    return refuse('oidc_token_type_unsupported', 'this is an access token; the password must be the ID token');
  }
  if (typeof unverified.iss !== 'string' || !constantTimeEqual(unverified.iss, config.issuer)) {
    return refuse('oidc_issuer_untrusted', `ID tokens are accepted from ${config.issuer} only`);
  }
  const aud = typeof unverified.aud === 'string' ? [unverified.aud] : Array.isArray(unverified.aud) ? unverified.aud : [];
  if (!aud.some((a) => typeof a === 'string' && config.audience.includes(a))) {
    return refuse('oidc_audience_mismatch', 'the ID token was issued to another client');
  }
  if (typeof unverified.exp === 'number' && unverified.exp + config.clockToleranceSeconds <= Math.floor(now / 1000)) {
    return refuse('oidc_token_expired', 'the ID token has expired; run tollgate login token for a fresh one');
  }
  return null;
}

/** The labels `labelClaims` bring, plus `iss` and `sub`; a refusal when a claim is too large. */
function labelsOf(payload: JWTPayload, config: OidcConfig, account: string, emailVerified: boolean): Labels | Refusal {
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
  labels.sub = [payload.sub as string];
  return labels;
}

/** The account a verified ID token names, held to the Basic username, with its labels. */
function principalOf(payload: JWTPayload, config: OidcConfig, username: string, now: number): AuthnOutcome {
  const tolerance = config.clockToleranceSeconds;
  // A back-channel logout token has the same issuer and audience; it names an event, not a login.
  if (payload.events !== undefined) return refuse('oidc_token_type_unsupported', 'this is a logout token; the password must be the ID token');
  // jose checks iat only against a maximum age; a token from the future means a clock is wrong.
  if (typeof payload.iat === 'number' && payload.iat > Math.floor(now / 1000) + tolerance) {
    return refuse('oidc_token_not_yet_valid', 'the ID token is issued in the future; check the clocks of the provider and of Tollgate');
  }
  if (payload.azp !== undefined && (typeof payload.azp !== 'string' || !config.audience.includes(payload.azp))) {
    return refuse('oidc_audience_mismatch', 'the ID token was issued to another client (azp)');
  }
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > MAX_ACCOUNT_LENGTH || CONTROL.test(payload.sub)) {
    return refuse('oidc_claims_invalid', "the ID token's sub claim is not a short string");
  }
  const emailVerified = payload.email_verified === true;
  const account = payload[config.accountClaim];
  if (typeof account !== 'string' || account.length === 0 || account.length > MAX_ACCOUNT_LENGTH || CONTROL.test(account)) {
    return refuse('oidc_account_claim_missing', `the ID token has no usable ${clip(config.accountClaim, 64)} claim to name the account`);
  }
  if (config.requireVerifiedEmail && config.accountClaim === 'email' && !emailVerified) {
    return refuse('oidc_email_unverified', 'the provider has not verified this email address', account);
  }
  if (!constantTimeEqual(username, account)) {
    return refuse('username_mismatch', `the username must be the account the ID token names (its ${clip(config.accountClaim, 64)} claim)`, account);
  }
  const labels = labelsOf(payload, config, account, emailVerified);
  if ('decision' in labels) return labels as Refusal;
  return { decision: 'accept', principal: { origin: 'oidc', account, labels } };
}

export function createOidcAuthenticator(config: OidcConfig, options: OidcAuthenticatorOptions = {}): AccountAuthenticator {
  const log = options.log;
  const provider = new OidcProvider(config, options);

  async function authenticate(credentials: BasicCredentials, context: AuthnContext): Promise<AuthnOutcome> {
    const token = credentials.password;
    const screened = screen(token, config, context.now);
    if (screened !== null) return screened;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await provider.keys(), {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: [...OIDC_ALGORITHMS],
        clockTolerance: config.clockToleranceSeconds,
        currentDate: new Date(context.now),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (e) {
      if (e instanceof ProviderUnavailable) return failure(e.reason, e.message);
      const outcome = classify(e, provider.timeoutMs);
      if (outcome.decision === 'fail') log?.warn({ issuer: config.issuer, reason: outcome.reason, err: e instanceof Error ? clip(e.message) : 'unknown' }, 'OIDC key set unavailable');
      return outcome;
    }
    return principalOf(payload, config, credentials.username, context.now);
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
      provider.close();
    },
  };
}
