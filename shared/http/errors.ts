import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { TollgateError, isTollgateError } from '../errors.js';
import type { Logger } from '../log.js';
import { statusOf } from './status.js';

/**
 * The JSON error body every express-based Tollgate API answers with:
 * `{"error": {"code": "device_revoked", "message": "the device is revoked"}}`.
 * Clients match on `code`; `message` is for people.
 */
export function errorBody(e: TollgateError): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  return { error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
}

/** body-parser's own errors, mapped to precise 4xx codes instead of a 500. */
export function fromBodyParser(err: unknown): TollgateError | null {
  const e = err as { type?: string; status?: number; limit?: number } | null;
  if (!e || typeof e.type !== 'string') return null;
  switch (e.type) {
    case 'entity.too.large':
      return new TollgateError('too_large', 'body_too_large', `request body larger than ${e.limit ?? 'the limit of'} bytes`);
    case 'entity.parse.failed':
      return new TollgateError('invalid_input', 'body_invalid_json', 'request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new TollgateError('invalid_input', 'body_encoding_unsupported', 'request body must be UTF-8 JSON');
    case 'request.aborted':
      return new TollgateError('invalid_input', 'body_aborted', 'request body was not received completely');
    case 'request.size.invalid':
      return new TollgateError('invalid_input', 'body_size_mismatch', 'request body size does not match Content-Length');
    default:
      return typeof e.status === 'number' && e.status >= 400 && e.status < 500
        ? new TollgateError('invalid_input', 'body_invalid', 'request body could not be read')
        : null;
  }
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const known = isTollgateError(err) ? err : fromBodyParser(err);
    if (known) {
      sendError(res, known);
      return;
    }
    log.error({ err, method: req.method, path: req.path }, 'unhandled error');
    res.status(500).json(INTERNAL_ERROR_BODY);
  };
}

/** A TollgateError as an answer: its status, Retry-After on a 503, and `body` (default: errorBody). */
export function sendError(res: Response, e: TollgateError, body: unknown = errorBody(e)): void {
  const answer = errorAnswer(e, body);
  res.status(answer.status).set(answer.headers).json(answer.body);
}

/** What sendError answers, as data: for routes served without express (shared/http/json.ts). */
export function errorAnswer(e: TollgateError, body: unknown = errorBody(e)): { status: number; headers: Record<string, string>; body: unknown } {
  return { status: statusOf(e.kind), headers: e.kind === 'unavailable' ? { 'Retry-After': String(retryAfterSeconds(e)) } : {}, body };
}

/** The answer to an error nobody expected: logged with the request, never shown to the client. */
export const INTERNAL_ERROR_BODY = { error: { code: 'internal_error', message: 'internal error' } };

/** How long a client should wait after a 503: what the error says, else a second. */
export function retryAfterSeconds(e: TollgateError): number {
  const hint = e.details?.retryAfterSeconds;
  return typeof hint === 'number' && hint > 0 ? hint : 1;
}

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'route_not_found', message: `no route ${req.method} ${req.path}` } });
};

/** Express 5 forwards rejected promises to the error handler; this keeps handlers typed and short. */
export type AsyncHandler = (...args: Parameters<RequestHandler>) => Promise<void>;
