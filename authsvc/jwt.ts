/**
 * Registry bearer tokens: the JWTs a Docker distribution registry (2.8 and 3.x) verifies.
 *
 * This is the realm's hot path, so it signs with node:crypto directly: jose's SignJWT measured
 * about 4-5x slower than node:crypto for the same ES256 token on this kind of machine (~100 us vs
 * ~25 us; with RS256 the RSA operation dominates and the gap shrinks to ~1.3x). jose is still what
 * the tests verify with, as an independent implementation.
 *
 * Registry compatibility constraints encoded here:
 * - `aud` is a plain string: registry 2.8 rejects an array;
 * - numeric claims are integers: the registry decodes them into int64;
 * - `kid` is the libtrust key id: registry 2.8 finds the key by it among its rootcertbundle's
 *   certificates, registry 3.x in its `jwks` file (where each key carries that kid). The signing
 *   certificate also goes in `x5c` (standard base64 DER) only when asked (KeyHint): both versions
 *   then verify its chain against the bundle, but it triples the token's size, and aktualizr-lite
 *   reads the realm's answer with a hard 1024-byte cap;
 * - ECDSA signatures are raw r||s (JWS), not DER.
 */
import crypto from 'node:crypto';
import { invalidInput, TollgateError } from '../shared/errors.js';
import { randomBytesFromPool } from '../shared/random.js';
import type { AccessEntry } from './policy.js';

export interface SigningKey {
  /** libtrust-format key id (for kid-only lookups: registry 2.8 in its bundle, 3.x in its JWKS). */
  kid: string;
  alg: 'ES256' | 'ES384' | 'RS256';
  privateKey: crypto.KeyObject;
  /** The signing certificate, put in the `x5c` header. */
  certificateDer: Buffer;
}

/** What the JWT header names the signing key by: `kid` alone, or `kid` and the `x5c` certificate. */
export type KeyHint = 'kid' | 'x5c';

export interface TokenClaims {
  issuer: string;
  subject: string;
  audience: string;
  access: AccessEntry[];
  ttlSeconds: number;
  now?: Date;
}

export interface SignedToken {
  token: string;
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
}

/** Shorter lifetimes expire before a large layer pull has even started. */
export const MIN_TTL_SECONDS = 60;
/** `nbf` is back-dated so a registry whose clock runs slightly behind still accepts a fresh token. */
export const NOT_BEFORE_SKEW_SECONDS = 10;
const JTI_BYTES = 16;

interface PreparedKey {
  /** base64url of the header JSON, the same for every token of this key. */
  encodedHeader: string;
  hash: 'sha256' | 'sha384';
  signKey: crypto.SignKeyObjectInput;
}

const ALGORITHMS = {
  ES256: { keyType: 'ec', curve: 'prime256v1', hash: 'sha256' },
  ES384: { keyType: 'ec', curve: 'secp384r1', hash: 'sha384' },
  RS256: { keyType: 'rsa', curve: undefined, hash: 'sha256' },
} as const;

/** Minimum RSA modulus: smaller keys are refused by current verifiers and policy alike. */
const MIN_RSA_BITS = 2048;

// Keyed by the SigningKey object, which is therefore treated as immutable once used: a rotated
// key is a new object and gets its own entry; the old one is collected with it.
const prepared: Record<KeyHint, WeakMap<SigningKey, PreparedKey>> = { kid: new WeakMap(), x5c: new WeakMap() };

/** Sign a registry token for `claims` with `key`, naming the key as `hint` says. */
export function signRegistryToken(key: SigningKey, claims: TokenClaims, hint: KeyHint = 'x5c'): SignedToken {
  const keyInfo = prepareKey(key, hint);
  checkClaims(claims);

  const nowMs = claims.now ? claims.now.getTime() : Date.now();
  const iat = Math.floor(nowMs / 1000);
  const exp = iat + claims.ttlSeconds;
  const jti = randomBytesFromPool(JTI_BYTES).toString('base64url');
  // Claim order mirrors distribution's ClaimSet; `access` is rebuilt so only its three fields
  // can ever reach the token.
  const payload = {
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.audience,
    exp,
    nbf: iat - NOT_BEFORE_SKEW_SECONDS,
    iat,
    jti,
    access: claims.access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })),
  };

  const signingInput = `${keyInfo.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = crypto.sign(keyInfo.hash, Buffer.from(signingInput), keyInfo.signKey);
  return {
    token: `${signingInput}.${signature.toString('base64url')}`,
    jti,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
  };
}

function checkClaims(claims: TokenClaims): void {
  const ttl = claims.ttlSeconds;
  if (!Number.isSafeInteger(ttl)) {
    throw invalidInput('ttl_invalid', 'token lifetime must be a whole number of seconds', { ttlSeconds: ttl });
  }
  if (ttl < MIN_TTL_SECONDS) {
    throw invalidInput('ttl_too_short', `token lifetime must be at least ${MIN_TTL_SECONDS} seconds`, {
      ttlSeconds: ttl,
      minTtlSeconds: MIN_TTL_SECONDS,
    });
  }
  if (typeof claims.issuer !== 'string' || claims.issuer.length === 0) {
    throw invalidInput('token_issuer_invalid', 'token issuer must be a non-empty string');
  }
  // A string, never an array: registry 2.8 only accepts a single audience string.
  if (typeof claims.audience !== 'string' || claims.audience.length === 0) {
    throw invalidInput('token_audience_invalid', 'token audience must be a non-empty string');
  }
  if (typeof claims.subject !== 'string') {
    throw invalidInput('token_subject_invalid', 'token subject must be a string');
  }
  if (claims.now !== undefined && !Number.isFinite(claims.now.getTime())) {
    throw invalidInput('token_time_invalid', 'token issue time is not a valid date');
  }
}

/**
 * The JOSE header of every token `key` signs, with the hints a registry finds the key by (see
 * KeyHint): `kid` always, the signing certificate in `x5c` when asked.
 */
export function tokenHeader(key: SigningKey, hint: KeyHint): Record<string, unknown> {
  return { alg: key.alg, typ: 'JWT', kid: key.kid, ...(hint === 'x5c' ? { x5c: [key.certificateDer.toString('base64')] } : {}) };
}

/**
 * Check the key once and build what does not change between tokens. A key that does not match its
 * algorithm or its certificate would yield tokens the registry refuses, so it is refused here,
 * as "keys unavailable", rather than producing them.
 */
function prepareKey(key: SigningKey, hint: KeyHint): PreparedKey {
  const cached = prepared[hint].get(key);
  if (cached) return cached;

  const spec = ALGORITHMS[key.alg];
  if (!spec) throw keyError(`unsupported signing algorithm ${String(key.alg)}`);
  const pk = key.privateKey;
  if (!(pk instanceof crypto.KeyObject) || pk.type !== 'private') throw keyError('signing key is not a private key');
  if (pk.asymmetricKeyType !== spec.keyType) {
    throw keyError(`${key.alg} needs an ${spec.keyType} key, got ${String(pk.asymmetricKeyType)}`);
  }
  const details = pk.asymmetricKeyDetails ?? {};
  if (spec.curve !== undefined && details.namedCurve !== spec.curve) {
    throw keyError(`${key.alg} needs curve ${spec.curve}, got ${String(details.namedCurve)}`);
  }
  if (spec.keyType === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw keyError(`RSA signing key must be at least ${MIN_RSA_BITS} bits`);
  }
  if (typeof key.kid !== 'string' || key.kid.length === 0) throw keyError('signing key has no kid');
  if (!Buffer.isBuffer(key.certificateDer) || key.certificateDer.length === 0) {
    throw keyError('signing key has no certificate');
  }
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(key.certificateDer);
  } catch {
    throw keyError('signing certificate is not valid DER X.509');
  }
  if (!certificate.checkPrivateKey(pk)) throw keyError('signing certificate does not match the signing key');

  const info: PreparedKey = {
    encodedHeader: Buffer.from(JSON.stringify(tokenHeader(key, hint))).toString('base64url'),
    hash: spec.hash,
    // JWS wants r||s (64 bytes for P-256, 96 for P-384), not DER; RS256 is RSASSA-PKCS1-v1_5.
    signKey:
      spec.keyType === 'ec'
        ? { key: pk, dsaEncoding: 'ieee-p1363' }
        : { key: pk, padding: crypto.constants.RSA_PKCS1_PADDING },
  };
  prepared[hint].set(key, info);
  return info;
}

function keyError(message: string): TollgateError {
  return new TollgateError('unavailable', 'signing_key_invalid', message);
}
