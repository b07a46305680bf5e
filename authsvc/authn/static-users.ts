/**
 * Static users with password hashes from the configuration, as docker_auth's `users` section has
 * them: bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`).
 *
 * bcryptjs (pure JavaScript, no native build) verifies bcrypt; the argon2 package (prebuilt
 * binaries shipped inside the npm package) verifies argon2 off the event loop.
 */
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import type { StaticUserConfig } from '../../shared/config-accounts.js';
import type { AccountAuthenticator, AuthnOutcome, Labels } from './types.js';
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

/**
 * Verified when the user is unknown, so that an unknown name costs the same time as a wrong
 * password (at bcrypt's default cost) and user names cannot be enumerated by timing. The password
 * behind it is irrelevant.
 */
const DUMMY_BCRYPT = '$2b$10$sya/8zwxFaLOVBfMLLI7lOJwd0ZzyySdhJBGLgd2OTxi3BL42tshG';

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

export interface StaticUsersOptions {
  /**
   * Whether an unknown user name is refused here (true) or passed on to the next authenticator
   * (false, when an authentication hook follows that may know it).
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

  return {
    origin: 'user',
    async authenticate({ username, password }): Promise<AuthnOutcome> {
      const user = byName.get(username);
      if (!user && !options.refuseUnknown) return PASS;
      if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
        return { decision: 'refuse', reason: 'password_too_long', message: `passwords are at most ${MAX_PASSWORD_BYTES} bytes`, account: username };
      }
      const ok = await verifyPassword(user?.password ?? DUMMY_BCRYPT, password);
      // One reason for an unknown user and a wrong password: the client learns nothing about which.
      if (!user || !ok) return { decision: 'refuse', reason: 'password_invalid', message: 'the user name or password is not valid', account: username };
      const labels: Labels = user.labels;
      return { decision: 'accept', principal: { origin: 'user', account: username, labels } };
    },
  };
}
