/**
 * The JSON Web Key Set (RFC 7517 section 5) of the keys registries must trust.
 *
 * Registry 3.x reads it from a local file (`auth.token.jwks`) and indexes the keys by their `kid`
 * member as written, so every key carries the same libtrust key id the realm puts in the JWT
 * header; without an explicit `kid`, it would only find keys from its root certificate bundle,
 * under their RFC 7638 thumbprint. `x5c` (RFC 7517 section 4.7) lets a verifier check the
 * certificate, and go-jose checks that it matches the key.
 */
import crypto from 'node:crypto';

export interface PublicJwk {
  kty: string;
  use: 'sig';
  alg: string;
  kid: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  /** Standard (not URL-safe) base64 DER, leaf first. */
  x5c: string[];
}

export interface JwkSet {
  keys: PublicJwk[];
}

/** What a key contributes: its id, algorithm and certificate (PEM or DER). */
export interface JwkSource {
  kid: string;
  alg: string;
  certificatePem?: string;
  certificateDer?: Buffer;
}

export function publicJwk(key: JwkSource): PublicJwk {
  const input = key.certificateDer ?? key.certificatePem;
  if (input === undefined) throw new TypeError(`signing key ${key.kid} has no certificate`);
  const cert = new crypto.X509Certificate(input);
  const jwk = cert.publicKey.export({ format: 'jwk' });
  const base: PublicJwk = { kty: String(jwk.kty), use: 'sig', alg: key.alg, kid: key.kid, x5c: [cert.raw.toString('base64')] };
  // Only the public members, named explicitly, so no private member could ever slip through.
  if (jwk.kty === 'EC') return { ...base, crv: jwk.crv, x: jwk.x, y: jwk.y, x5c: base.x5c };
  if (jwk.kty === 'RSA') return { ...base, n: jwk.n, e: jwk.e, x5c: base.x5c };
  throw new TypeError(`signing key ${key.kid} has an unsupported key type ${String(jwk.kty)}`);
}

export function jwkSet(keys: readonly JwkSource[]): JwkSet {
  return { keys: keys.map(publicJwk) };
}

/** The set as the file and the endpoint carry it: pretty-printed, newline-terminated. */
export function jwksJson(keys: readonly JwkSource[]): string {
  return `${JSON.stringify(jwkSet(keys), null, 2)}\n`;
}
