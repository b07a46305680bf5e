/**
 * Static users with password hashes from the configuration, as docker_auth's `users` section has
 * them: bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`).
 *
 * bcryptjs (pure JavaScript, no native build) verifies bcrypt; the argon2 package (prebuilt
 * binaries shipped inside the npm package) verifies argon2 off the event loop.
 */
import argon2 from 'argon2';
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { StaticUserConfig } from '../../shared/config-accounts.js';
import type { AccountAuthenticator, AuthnOutcome } from './types.js';
import { PASS } from './types.js';

export type PasswordAlgorithm = 'argon2id' | 'bcrypt';

/** bcrypt cost and argon2id parameters for new hashes (OWASP's password storage minimums or above). */
const BCRYPT_COST = 10;
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/**
 * Longest password looked at. bcrypt reads only the first 72 bytes, so longer passwords would
 * silently share a hash with their prefix: they are refused rather than truncated.
 */
export const MAX_PASSWORD_BYTES = 72;

export async function hashPassword(password: string, algorithm: PasswordAlgorithm = 'argon2id'): Promise<string> {
  if (password.length === 0) throw new Error('the password is empty');
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new Error(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  }
  return algorithm === 'bcrypt' ? bcrypt.hash(password, BCRYPT_COST) : argon2.hash(password, ARGON2_OPTIONS);
}

/** True when `password` matches `hash`; false for a mismatch or a hash that cannot be read. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    if (hash.startsWith('$argon2')) return await argon2.verify(hash, password);
    return await bcrypt.compare(password, hash);
  } catch {
    return false;
  }
}

/**
 * What one verification of `hash` costs is decided by its algorithm and parameters (argon2 type,
 * memory, iterations, lanes, salt and digest lengths; bcrypt cost). Hashes of one kind cost the
 * same, whatever the password.
 */
function costClass(hash: string): string {
  const argon = ARGON2_HASH.exec(hash);
  if (argon) {
    const [, type, version, params, salt, digest] = argon;
    return `${type}$${version ?? ''}$${params}$${salt!.length}$${digest!.length}`;
  }
  const bcryptCost = BCRYPT_HASH.exec(hash);
  if (bcryptCost) return `bcrypt$${bcryptCost[1]}`;
  // Unreadable: it verifies nothing and fails at once, as its stand-in does.
  return `unreadable$${hash}`;
}

const ARGON2_HASH = /^\$(argon2(?:id|i|d))\$(v=\d+\$)?(m=\d+,t=\d+,p=\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
const BCRYPT_HASH = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A hash of the same kind and parameters as `hash` that no password is known for: random salt and
 * digest of the same lengths. Verifying against it costs what verifying against `hash` costs.
 */
function standIn(hash: string): string {
  const argon = ARGON2_HASH.exec(hash);
  if (argon) {
    const [, type, version, params, salt, digest] = argon;
    const random = (b64: string) => randomBytes(Math.floor((b64.length * 3) / 4)).toString('base64').replace(/=+$/, '');
    return `$${type}$${version ?? ''}${params}$${random(salt!)}$${random(digest!)}`;
  }
  const bcryptCost = BCRYPT_HASH.exec(hash);
  if (bcryptCost) {
    const chars = [...randomBytes(53)].map((b) => BCRYPT_ALPHABET[b % 64]).join('');
    return `$2b$${bcryptCost[1]}$${chars}`;
  }
  return hash;
}

/** Verified in place of a password too long to check, so a refusal costs what a check costs. */
const PLACEHOLDER_PASSWORD = 'x'.repeat(MAX_PASSWORD_BYTES);

export interface StaticUsersOptions {
  /**
   * Whether an unknown user name is refused here (true) or passed on to the next authenticator
   * (false, when an authentication hook follows that may know it). Passed on too, then: a known
   * name whose password does not match, with a veto on any later acceptance, so that a known name
   * and an unknown one reach the hook alike and get the same answer.
   */
  refuseUnknown: boolean;
}

export function createStaticUserAuthenticator(
  users: Readonly<Record<string, StaticUserConfig>>,
  options: StaticUsersOptions,
): AccountAuthenticator {
  // A Map, not the config object: a user called `__proto__` or `constructor` must not reach
  // Object.prototype.
  const byName = new Map<string, StaticUserConfig>(Object.entries(users));
  // One stand-in per kind of hash configured. Every check verifies exactly one hash of each kind,
  // the user's own for its kind and stand-ins for the others, so that a known name, an unknown name
  // and any mix of argon2id and bcrypt users all cost the same (the sum of one verification of each
  // kind: configure one kind and cost for every user to keep that at one verification).
  const standIns = new Map<string, string>();
  for (const user of byName.values()) {
    const kind = costClass(user.password);
    if (!standIns.has(kind)) standIns.set(kind, standIn(user.password));
  }
  const kinds = [...standIns.keys()].sort();

  /** True if `password` is `user`'s; verifies one hash of every configured kind either way. */
  async function check(user: StaticUserConfig | undefined, password: string): Promise<boolean> {
    const own = user === undefined ? undefined : costClass(user.password);
    let ok = false;
    for (const kind of kinds) {
      const matched = await verifyPassword(kind === own ? user!.password : standIns.get(kind)!, password);
      if (kind === own) ok = matched;
    }
    return ok;
  }

  return {
    origin: 'user',
    async authenticate({ username, password }): Promise<AuthnOutcome> {
      const user = byName.get(username);
      const tooLong = Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES;
      const ok = await check(user, tooLong ? PLACEHOLDER_PASSWORD : password);
      if (user && ok && !tooLong) return { decision: 'accept', principal: { origin: 'user', account: username, labels: user.labels } };
      // One reason for an unknown user and a wrong password: the client learns nothing about which.
      const refusal = tooLong
        ? { reason: 'password_too_long', message: `passwords are at most ${MAX_PASSWORD_BYTES} bytes`, account: username }
        : { reason: 'password_invalid', message: 'the user name or password is not valid', account: username };
      if (options.refuseUnknown) return { decision: 'refuse', ...refusal };
      return user ? { decision: 'pass', veto: refusal } : PASS;
    },
  };
}
