import { createHash, randomBytes } from 'node:crypto';
import { unauthenticated } from '../errors.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit, record } from './events.js';

/**
 * The web console's sign-in facts that outlive one process: the single-use codes `tollgate console`
 * makes on the Tollgate host (the admin service redeems them), and the audit record of every
 * console sign-in and sign-out.
 */

export const CONSOLE_CODE_TTL_MS = 5 * 60_000;

const hashCode = (code: string) => createHash('sha256').update(code, 'utf8').digest('hex');

/** A code that opens one operator session in the console, valid for five minutes. */
export async function createConsoleSigninCode(deps: AuthorityDeps, actor: Actor): Promise<{ code: string; expiresAt: string }> {
  const code = randomBytes(24).toString('base64url');
  const now = deps.now();
  const expiresAt = now + CONSOLE_CODE_TTL_MS;
  await commit(deps, { type: 'console.signin_code_created', ...by(actor), details: { expiresAt: new Date(expiresAt).toISOString() } }, (audit) =>
    deps.store.addConsoleSigninCode({ codeHash: hashCode(code), createdAt: now, expiresAt }, audit),
  );
  return { code, expiresAt: new Date(expiresAt).toISOString() };
}

/** Uses a sign-in code up; throws 401 when it is unknown, used or expired. */
export async function redeemConsoleSigninCode(deps: AuthorityDeps, code: string): Promise<void> {
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(code) || !(await deps.store.consumeConsoleSigninCode(hashCode(code), deps.now()))) {
    throw unauthenticated('signin_code_invalid', 'this sign-in link is unknown, used or expired; run tollgate console for a new one');
  }
}

/** Records a console sign-in or sign-out of `actor` (in the factory's trail when there is one). */
export async function recordConsoleSession(
  deps: AuthorityDeps,
  actor: Actor,
  event: 'signed_in' | 'signed_out' | 'signin_refused',
  details: { via: 'token' | 'oidc' | 'code'; factoryId?: string | null; reason?: string },
): Promise<void> {
  const fields = { ...by(actor), factoryId: details.factoryId ?? null, details: { via: details.via } };
  await record(
    deps,
    event === 'signin_refused' ? { type: 'console.signin_refused', ...fields, reason: details.reason ?? 'signin_refused' } : { type: `console.${event}`, ...fields, reason: details.reason ?? null },
  );
}
