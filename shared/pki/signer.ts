import crypto, { webcrypto } from 'node:crypto';
import { invalidInput } from '../errors.js';
import { assertPemSize } from './pem.js';

/**
 * Bridges node:crypto keys to the WebCrypto keys @peculiar/x509 signs with. WebCrypto needs the
 * algorithm up front to import a key, so it is derived from the key itself; the signature
 * algorithm then follows the signing key: P-256 -> ECDSA/SHA-256, P-384 -> ECDSA/SHA-384,
 * RSA -> RSASSA-PKCS1-v1_5/SHA-256.
 */

export interface WebAlgorithms {
  /** For importKey. */
  importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  /** For signing (and the certificate's signatureAlgorithm). */
  signingAlgorithm: { name: 'ECDSA'; hash: 'SHA-256' | 'SHA-384' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };
}

/**
 * Derived from the key itself, without the size policy: the CSR helper must be able to produce
 * requests with weak keys so that their refusal can be tested.
 */
export function webAlgorithmsFor(publicKey: crypto.KeyObject): WebAlgorithms {
  const type = publicKey.asymmetricKeyType;
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1')) {
    const namedCurve = curve === 'prime256v1' ? 'P-256' : 'P-384';
    return { importParams: { name: 'ECDSA', namedCurve }, signingAlgorithm: { name: 'ECDSA', hash: namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' } };
  }
  if (type === 'rsa') {
    return { importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
  throw invalidInput('key_type_not_allowed', `cannot sign with a ${type ?? 'unknown'}${curve ? ` ${curve}` : ''} key; expected EC P-256, EC P-384 or RSA`);
}

export interface Signer {
  privateKey: webcrypto.CryptoKey;
  /** The public half, for matching against certificates, the key policy and key identifiers. */
  publicKey: crypto.KeyObject;
  signingAlgorithm: WebAlgorithms['signingAlgorithm'];
}

/**
 * Imports an unencrypted private key PEM (PKCS#8; PKCS#1 and SEC1 are read too) for signing.
 * No key policy here: callers that sign certificates apply describePublicKey to `publicKey`.
 */
export async function importSigner(privateKeyPem: string, what: string): Promise<Signer> {
  if (typeof privateKeyPem !== 'string') throw invalidInput('private_key_invalid', `${what} must be a PEM private key`);
  assertPemSize(privateKeyPem, what);
  let keyObject: crypto.KeyObject;
  try {
    keyObject = crypto.createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    // node's message is not passed on: it is about key bytes, and nothing key-related leaves here.
    throw invalidInput('private_key_invalid', `${what} is not a readable unencrypted PEM private key (PKCS#8 expected)`);
  }
  const publicKey = crypto.createPublicKey(keyObject);
  const { importParams, signingAlgorithm } = webAlgorithmsFor(publicKey);
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, importParams, false, ['sign']);
  return { privateKey, publicKey, signingAlgorithm };
}

/** A WebCrypto public key, for the generators that want a CryptoKey rather than SPKI bytes. */
export async function importPublicKey(publicKey: crypto.KeyObject): Promise<webcrypto.CryptoKey> {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return webcrypto.subtle.importKey('spki', spki, webAlgorithmsFor(publicKey).importParams, true, ['verify']);
}

export function sameKey(a: crypto.KeyObject, b: crypto.KeyObject): boolean {
  const da = a.export({ type: 'spki', format: 'der' });
  const db = b.export({ type: 'spki', format: 'der' });
  return da.length === db.length && crypto.timingSafeEqual(da, db);
}
