import { invalidInput } from '../errors.js';
import { hashSecret, newSecret, newTokenId } from '../secrets.js';
import type { OperatorToken } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit } from './events.js';
import type { RefusalReason } from './refusals.js';
import { assertLabel } from './names.js';

/** An operator token lives a year at most: it opens every factory. */
const MAX_OPERATOR_TOKEN_DAYS = 365;

export interface CreatedOperatorToken {
  token: OperatorToken;
  /** Shown once, never stored. */
  secret: string;
}

/**
 * Creates an operator token (`tgo_`): the admin API then acts as the operator, for every factory
 * and the operator's own commands, from any host. Only the operator can make one.
 */
export async function createOperatorToken(deps: AuthorityDeps, actor: Actor, request: { description?: unknown; days?: unknown }): Promise<CreatedOperatorToken> {
  const description = assertLabel(request.description, 'description');
  const days = request.days ?? 90;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_OPERATOR_TOKEN_DAYS) {
    throw invalidInput('days_invalid', `days must be a whole number between 1 and ${MAX_OPERATOR_TOKEN_DAYS}`);
  }
  const now = deps.now();
  const { secret, secretHash } = newSecret('operator');
  const token: OperatorToken = { id: newTokenId().replace(/^tok_/, 'op_'), description, createdAt: now, expiresAt: now + days * 86_400_000, revokedAt: null };
  await commit(deps, { type: 'operator_token.created', ...by(actor), target: token.id, details: { expiresAt: token.expiresAt } }, (audit) =>
    deps.store.insertOperatorToken({ ...token, secretHash }, audit),
  );
  return { token, secret };
}

export async function revokeOperatorToken(deps: AuthorityDeps, actor: Actor, id: unknown): Promise<void> {
  if (typeof id !== 'string' || !/^op_[A-Za-z0-9_-]{16}$/.test(id)) throw invalidInput('token_id_invalid', 'an operator token id looks like op_ followed by 16 characters');
  await commit(deps, { type: 'operator_token.revoked', ...by(actor), target: id }, (audit) => deps.store.revokeOperatorToken(id, audit));
}

/**
 * An operator token's standing, by the refusal table's reasons: unknown (or malformed) tokens are
 * `token_invalid` without saying which, as the admin API answers for any token.
 */
export async function operatorTokenStanding(
  deps: Pick<AuthorityDeps, 'store' | 'now'>,
  secret: string,
): Promise<{ ok: true; token: OperatorToken } | { ok: false; reason: RefusalReason }> {
  const token = await deps.store.findOperatorTokenBySecretHash(hashSecret(secret));
  if (!token) return { ok: false, reason: 'token_invalid' };
  if (token.revokedAt !== null) return { ok: false, reason: 'token_revoked' };
  if (token.expiresAt !== null && token.expiresAt <= deps.now()) return { ok: false, reason: 'token_expired' };
  return { ok: true, token };
}
