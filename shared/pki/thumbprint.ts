import type crypto from 'node:crypto';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { toPublicKey } from './keys.js';

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key, as jose computes it: how registry
 * 3.x keys the certificates of its root bundle. Apart from keys.ts, which the device package also
 * carries, so that the device side does not need jose.
 */
export async function jwkThumbprint(publicKey: crypto.KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(toPublicKey(publicKey)), 'sha256');
}
