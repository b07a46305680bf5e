/**
 * The key-encryption key (KEK): 256 bits every instance is given in a file, with which private
 * keys are sealed before they reach the database (AES-256-GCM via node:crypto). The database alone
 * (a backup, a replica, a leaked dump) then holds no usable key.
 *
 * Each sealed key carries its row's reference as associated data, so a ciphertext copied into
 * another row (say, an attacker with write access swapping a CA's key for a signing key's) fails
 * authentication instead of opening as the wrong key. The KEK's id (a hash, never the key) names
 * which KEK sealed a row, so a rotation can keep reading rows sealed by the previous one.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TollgateError, invalidInput } from './errors.js';

export interface Kek {
  id: string;
  key: Buffer;
  /** Where it came from, for messages. */
  file: string;
}

const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Reads a KEK file: 32 bytes as base64 (44 characters) or hex (64), surrounding whitespace ignored. */
export function loadKek(file: string): Kek {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw invalidInput('kek_unreadable', `cannot read the key-encryption key file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(text)) key = Buffer.from(text, 'base64');
  if (!key || key.length !== 32) {
    throw invalidInput('kek_invalid', `${file} does not hold a 256-bit key-encryption key (32 random bytes as base64 or hex; e.g. openssl rand -base64 32)`);
  }
  return { id: kekId(key), key, file };
}

/** A new KEK, base64, for a file. */
export function generateKekText(): string {
  return `${randomBytes(32).toString('base64')}\n`;
}

function kekId(key: Buffer): string {
  return createHash('sha256').update('tollgate key-encryption key id\0').update(key).digest('hex').slice(0, 16);
}

function associatedData(ref: string): Buffer {
  return Buffer.from(`tollgate sealed key ${VERSION}\0${ref}`, 'utf8');
}

/** Seals `plaintext` for the row `ref`: `v1.<nonce>.<ciphertext>.<tag>`, base64url parts. */
export function seal(kek: Kek, ref: string, plaintext: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(ref));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, nonce.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Opens what `seal` made for `ref`; a changed ciphertext, another row's, or the wrong KEK is refused. */
export function unseal(kek: Kek, ref: string, sealed: string): string {
  const parts = sealed.split('.');
  const unsealable = () => new TollgateError('unavailable', 'key_unsealable', `the sealed key ${ref} does not open with key-encryption key ${kek.id}: it was altered or belongs to another row`);
  if (parts.length !== 4 || parts[0] !== VERSION) throw unsealable();
  const [, nonce, ciphertext, tag] = parts as [string, string, string, string];
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(nonce, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(ref));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw unsealable();
  }
}
