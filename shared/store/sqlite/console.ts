import type { AuditEntry, Store } from '../types.js';
import type { SqliteCore } from './core.js';

/** The single-use codes that sign the web console in as the operator (only their SHA-256 is kept). */
export function consoleCodeRows(core: SqliteCore): Pick<Store, 'addConsoleSigninCode' | 'consumeConsoleSigninCode'> {
  return {
  async addConsoleSigninCode(code: { codeHash: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void> {
    core.write(() => {
      core.stmt('DELETE FROM console_signin_codes WHERE expires_at <= ?').run(code.createdAt);
      core.stmt('INSERT INTO console_signin_codes(code_hash, created_at, expires_at) VALUES (?, ?, ?)').run(code.codeHash, code.createdAt, code.expiresAt);
      core.audit(audit);
    });
  },

  async consumeConsoleSigninCode(codeHash: string, now: number): Promise<boolean> {
    return core.write(() => core.stmt('DELETE FROM console_signin_codes WHERE code_hash = ? AND expires_at > ?').run(codeHash, now).changes === 1);
  },
  };
}
