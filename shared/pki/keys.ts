import crypto from 'node:crypto';
import { invalidInput } from '../errors.js';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHM_NAMES, type KeyAlgorithm } from './key-types.js';

/** Key generation, the key policy (which device and CA keys are acceptable), and key identifiers. */

export type { KeyAlgorithm } from './key-types.js';

/** PKCS#8 and SPKI PEM. */
export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export interface KeyDescription {
  type: 'ec' | 'rsa';
  curve?: 'P-256' | 'P-384';
  /** RSA modulus length in bits, as the key has it (not the bucket). */
  bits?: number;
  algorithm: KeyAlgorithm;
}

const ACCEPTED = 'EC P-256, EC P-384 or RSA of at least 2048 bits';

export function generateKeyPair(alg: KeyAlgorithm = DEFAULT_KEY_ALGORITHM): KeyPairPem {
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  let pair: { publicKey: string; privateKey: string };
  switch (alg) {
    case 'ec-p256':
    case 'ec-p384':
      pair = crypto.generateKeyPairSync('ec', { namedCurve: alg === 'ec-p256' ? 'P-256' : 'P-384', publicKeyEncoding, privateKeyEncoding });
      break;
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      pair = crypto.generateKeyPairSync('rsa', { modulusLength: Number(alg.slice(4)), publicExponent: 0x10001, publicKeyEncoding, privateKeyEncoding });
      break;
    default:
      throw invalidInput('key_algorithm_invalid', `unknown key algorithm "${String(alg)}"; expected one of ${KEY_ALGORITHM_NAMES}`);
  }
  return { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
}

/** The public half of a key object (private keys are accepted so callers need not convert). */
export function toPublicKey(key: crypto.KeyObject): crypto.KeyObject {
  if (key.type === 'public') return key;
  if (key.type === 'private') return crypto.createPublicKey(key);
  throw invalidInput('key_type_not_allowed', `a ${key.type} key is not an asymmetric key; expected ${ACCEPTED}`);
}

/** OpenSSL reports curve names in its own spelling; both spellings are accepted. */
const CURVES: Record<string, 'P-256' | 'P-384'> = {
  prime256v1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
};

/** Describes a key and enforces the key policy: refuses anything but EC P-256/P-384 and RSA >= 2048. */
export function describePublicKey(key: crypto.KeyObject): KeyDescription {
  if (key.type === 'secret') throw invalidInput('key_type_not_allowed', `a symmetric key is not a public key; expected ${ACCEPTED}`);
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    const curve = details.namedCurve === undefined ? undefined : CURVES[details.namedCurve];
    if (!curve) {
      throw invalidInput('key_type_not_allowed', `EC curve ${details.namedCurve ?? '(explicit parameters)'} is not accepted; expected P-256 or P-384`);
    }
    return { type: 'ec', curve, algorithm: curve === 'P-256' ? 'ec-p256' : 'ec-p384' };
  }
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048) throw invalidInput('key_too_small', `RSA key has ${bits} bits; at least 2048 bits are required`);
    const algorithm: KeyAlgorithm = bits >= 4096 ? 'rsa-4096' : bits >= 3072 ? 'rsa-3072' : 'rsa-2048';
    return { type: 'rsa', bits, algorithm };
  }
  if (type === 'rsa-pss') {
    // RSA-PSS-restricted keys cannot sign PKCS#1 v1.5, which TLS client auth and RS256 need.
    throw invalidInput('key_type_not_allowed', `RSA-PSS-only keys are not accepted; expected ${ACCEPTED} (rsaEncryption)`);
  }
  throw invalidInput('key_type_not_allowed', `${type ?? 'unknown'} keys are not accepted; expected ${ACCEPTED}`);
}

export function jwsAlgorithmFor(key: crypto.KeyObject): 'ES256' | 'ES384' | 'RS256' {
  const { algorithm } = describePublicKey(key);
  return algorithm === 'ec-p256' ? 'ES256' : algorithm === 'ec-p384' ? 'ES384' : 'RS256';
}

function spkiDer(key: crypto.KeyObject): Buffer {
  return toPublicKey(key).export({ type: 'spki', format: 'der' });
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, no padding. */
function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * libtrust key id, as Docker registry 2.8 computes it for the `kid` of token JWS headers:
 * SHA-256 over the DER SubjectPublicKeyInfo, first 30 bytes (240 bits), base32 without padding
 * (48 characters), in 12 groups of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: crypto.KeyObject): string {
  const digest = crypto.createHash('sha256').update(spkiDer(publicKey)).digest().subarray(0, 30);
  return (base32(digest).match(/.{4}/g) as string[]).join(':');
}

/** SHA-256 hex (lower case, no colons) of the SPKI DER: the pin stored for a device's public key. */
export function publicKeyFingerprint(publicKey: crypto.KeyObject): string {
  return crypto.createHash('sha256').update(spkiDer(publicKey)).digest('hex');
}
