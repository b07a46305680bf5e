import { createHash, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { randomBytesFromPool } from './random.js';

/**
 * Opaque bearer secrets: device tokens (from /hub-creds/), factory API tokens, refresh tokens and
 * operator tokens (the admin API as the operator).
 *
 * Shape: `<prefix><43 chars base64url of 32 random bytes><6 chars base64url CRC-32 of the former>`.
 * The prefix lets secret scanners recognise a leaked Tollgate secret and tell its kind; the
 * checksum lets them (and us) reject a mistyped or made-up value without a store lookup.
 * Only the SHA-256 of a secret is stored. A fast hash is right here: the secret has 256 bits of
 * entropy, so there is nothing for a slow password hash to protect against.
 */
export type SecretKind = 'device' | 'api' | 'refresh' | 'operator';

export const SECRET_PREFIX: Record<SecretKind, string> = {
  device: 'tgd_',
  api: 'tga_',
  refresh: 'tgr_',
  operator: 'tgo_',
};

const BODY_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const SECRET_PATTERN = /^tg[daro]_[A-Za-z0-9_-]{49}$/;

function checksum(body: string): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(body) >>> 0);
  return b.toString('base64url');
}

export interface NewSecret {
  secret: string;
  secretHash: string;
}

export function newSecret(kind: SecretKind): NewSecret {
  const body = randomBytesFromPool(32).toString('base64url');
  const secret = SECRET_PREFIX[kind] + body + checksum(body);
  return { secret, secretHash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The kind of a well-formed secret, or null for anything that is not one (wrong shape or checksum). */
export function secretKind(candidate: string): SecretKind | null {
  if (candidate.length !== 4 + BODY_LENGTH + CHECKSUM_LENGTH || !SECRET_PATTERN.test(candidate)) return null;
  const body = candidate.slice(4, 4 + BODY_LENGTH);
  if (checksum(body) !== candidate.slice(4 + BODY_LENGTH)) return null;
  const prefix = candidate.slice(0, 4);
  for (const [kind, p] of Object.entries(SECRET_PREFIX) as [SecretKind, string][]) if (p === prefix) return kind;
  return null;
}

/** base64url's 64 characters in ASCII order: ids written with them sort as their bits do. */
const SORTABLE_ALPHABET = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

/** `value` (below 2^(6 * length)) as `length` characters of SORTABLE_ALPHABET, most significant first. */
function sortableChars(value: number, length: number): string {
  let out = '';
  for (let i = length - 1; i >= 0; i--) out += SORTABLE_ALPHABET[Math.floor(value / 2 ** (6 * i)) % 64];
  return out;
}

/**
 * Public, non-secret identifier of a stored token (what lists and audit records show): `tok_` and
 * 16 characters, 8 for the time it was made (ms, good until the year 10889) and 8 random (48 bits).
 * A token made later sorts later, so its row goes to the end of the id index rather than to a
 * random page of it: a page less for every commit of minted tokens to write (bench/, gateway
 * keep-alive). The time an id shows is no secret: the token's record holds it anyway.
 */
export function newTokenId(now = Date.now()): string {
  const random = randomBytesFromPool(6);
  return 'tok_' + sortableChars(now, 8) + sortableChars(random.readUIntBE(0, 6), 8);
}

/**
 * Compares two strings in time independent of where they differ. Their lengths are not hidden: two
 * strings of different lengths are unequal at once (the values compared here, a Basic username and
 * a token's subject, have public lengths). Hashing both sides first would hide the length too, at
 * ten times the cost on the realm's path: sameSecret, below, for values whose length is secret.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/**
 * Compares two secrets (a CSRF token, an OAuth2 `state`) in time independent of their contents and
 * of their lengths: both are hashed first, so a guess learns nothing, not even how long the secret is.
 */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}
