/**
 * The JSON Web Key Set (RFC 7517 section 5) of the keys registries must trust.
 *
 * What distribution does with it (measured against 2.8.2, 3.0.0 and 3.1.1): registry 3.x reads it
 * from a local file (`auth.token.jwks`) and consults it only for tokens WITHOUT `x5c`, looking the
 * key up by the token's `kid`, so every entry carries the libtrust key id the realm writes as
 * `kid` (the realm's default tokens name their key that way, see jwt.ts). A token with `x5c`
 * (`authsvc.tokenKeyHint: x5c`) is verified against `rootcertbundle` alone, never against the JWKS. 3.x indexes the bundle's keys by RFC 7638 thumbprint (3.0.0 computed it
 * wrongly), so a kid-only token with a libtrust kid is found on 3.x only through this file; registry
 * 2.8 ignores it and finds such a token's key in the bundle by libtrust key id.
 *
 * `x5c` in each entry (RFC 7517 section 4.7) lets a verifier check the certificate; go-jose checks
 * that it matches the key. The public members come from jose's `exportJWK`.
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

export async function publicJwk(key: JwkSource): Promise<PublicJwk> {
  const input = key.certificateDer ?? key.certificatePem;
  if (input === undefined) throw new TypeError(`signing key ${key.kid} has no certificate`);
  const cert = new crypto.X509Certificate(input);
  // jose on first use: the realm serves its JWKS rarely (registries read it at start-up), and loaded
  // it is some 40 modules in every realm process.
  const { exportJWK } = await import('jose');
  const jwk = await exportJWK(cert.publicKey);
  const base: PublicJwk = { kty: String(jwk.kty), use: 'sig', alg: key.alg, kid: key.kid, x5c: [cert.raw.toString('base64')] };
  // Only the public members, named explicitly, so no private member could ever slip through.
  if (jwk.kty === 'EC') return { ...base, crv: jwk.crv, x: jwk.x, y: jwk.y, x5c: base.x5c };
  if (jwk.kty === 'RSA') return { ...base, n: jwk.n, e: jwk.e, x5c: base.x5c };
  throw new TypeError(`signing key ${key.kid} has an unsupported key type ${String(jwk.kty)}`);
}

export async function jwkSet(keys: readonly JwkSource[]): Promise<JwkSet> {
  return { keys: await Promise.all(keys.map(publicJwk)) };
}

/** The set as the file and the endpoint carry it: pretty-printed, newline-terminated. */
export async function jwksJson(keys: readonly JwkSource[]): Promise<string> {
  return `${JSON.stringify(await jwkSet(keys), null, 2)}\n`;
}
