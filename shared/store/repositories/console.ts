import type { Queryable } from '../engine.js';

/** Single-use codes that sign the web console in as the operator; only their hash is kept. */
export const consoleCodes = {
  /** Adds a code, dropping the expired ones on the way. */
  async add(q: Queryable, code: { codeHash: string; createdAt: number; expiresAt: number }): Promise<void> {
    await q.run('DELETE FROM console_signin_codes WHERE expires_at <= ?', [code.createdAt]);
    await q.run('INSERT INTO console_signin_codes(code_hash, created_at, expires_at) VALUES (?, ?, ?)', [code.codeHash, code.createdAt, code.expiresAt]);
  },

  /** Deletes the code if it is unexpired at `now`; true if it was. */
  async consume(q: Queryable, codeHash: string, now: number): Promise<boolean> {
    return (await q.run('DELETE FROM console_signin_codes WHERE code_hash = ? AND expires_at > ?', [codeHash, now])) === 1;
  },
};
