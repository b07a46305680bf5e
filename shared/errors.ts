/**
 * One error type for every refusal Tollgate makes, whatever the layer.
 *
 * Domain code (store, PKI, authority, policy) throws a TollgateError with a stable machine-readable
 * `code` and a `kind` that says what sort of refusal it is. Only the HTTP and CLI edges translate the
 * kind into a status code (shared/http/status.ts) or an exit code, so the domain never knows about HTTP.
 */
export type ErrorKind =
  | 'invalid_input' // malformed or hostile input: 400 / exit 2
  | 'unauthenticated' // no or bad credentials: 401
  | 'forbidden' // authenticated, but not allowed: 403
  | 'not_found' // 404
  | 'conflict' // state does not allow it (duplicate, wrong order): 409
  | 'too_large' // 413
  | 'rate_limited' // 429
  | 'unavailable'; // dependency down (store busy past its timeout, keys not loaded): 503

export class TollgateError extends Error {
  override readonly name = 'TollgateError';
  constructor(
    readonly kind: ErrorKind,
    /** Stable, snake_case, documented: clients and tests match on it, never on the message. */
    readonly code: string,
    message: string,
    /** Extra, non-secret facts for the client (e.g. which field). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const invalidInput = (code: string, message: string, details?: Record<string, unknown>) =>
  new TollgateError('invalid_input', code, message, details);
export const unauthenticated = (code: string, message: string) => new TollgateError('unauthenticated', code, message);
export const forbidden = (code: string, message: string) => new TollgateError('forbidden', code, message);
export const notFound = (code: string, message: string) => new TollgateError('not_found', code, message);
export const conflict = (code: string, message: string) => new TollgateError('conflict', code, message);


export function isTollgateError(e: unknown): e is TollgateError {
  return e instanceof TollgateError;
}
