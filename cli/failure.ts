import { TollgateError, isTollgateError } from '../shared/errors.js';

/**
 * Exit codes and the one-line error format of the CLI.
 *
 * 0: done. 1: refused by the authority or the server (not found, conflict, forbidden,
 * unauthenticated, unavailable). 2: the invocation or its input is wrong (unknown flag, missing
 * argument, unreadable or invalid file, invalid value): fixing the command line fixes it.
 */
export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

export function usageError(code: string, message: string): TollgateError {
  return new TollgateError('invalid_input', code, message);
}

export function exitCodeOf(e: unknown): number {
  if (!isTollgateError(e)) return EXIT_REFUSED;
  return e.kind === 'invalid_input' || e.kind === 'too_large' ? EXIT_USAGE : EXIT_REFUSED;
}

/**
 * `tollgate: <message> (<code>)`, one line per line of the message (configuration errors list one
 * problem per line). Never a stack trace: an unexpected error shows its message only.
 */
export function formatError(e: unknown): string {
  const [message, code] = isTollgateError(e)
    ? [e.message, e.code]
    : [`unexpected error: ${e instanceof Error ? e.message : String(e)}`, 'internal_error'];
  const lines = message.split('\n').filter((l) => l.trim().length > 0);
  return (lines.length > 0 ? lines : [code]).map((l) => `tollgate: ${l} (${code})\n`).join('');
}

/**
 * The same error as one JSON line, for `--json`: `{"error": {"code", "message", "exitCode"}}`, the
 * shape the admin API answers with, on standard error like every error.
 */
export function formatJsonError(e: unknown): string {
  const [message, code] = isTollgateError(e)
    ? [e.message, e.code]
    : [`unexpected error: ${e instanceof Error ? e.message : String(e)}`, 'internal_error'];
  const details = isTollgateError(e) && e.details ? { details: e.details } : {};
  return `${JSON.stringify({ error: { code, message, exitCode: exitCodeOf(e), ...details } })}\n`;
}
