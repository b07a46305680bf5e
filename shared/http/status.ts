import type { ErrorKind } from '../errors.js';

/**
 * The one mapping between refusal kinds and HTTP status codes, both ways: servers answer a
 * TollgateError with `statusOf(kind)`, and clients (the remote admin client, the device tools)
 * read an answer's status back into a kind with `kindOfStatus`. The domain never sees it.
 */
const STATUS: Readonly<Record<ErrorKind, number>> = {
  invalid_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

const KIND_OF_STATUS: ReadonlyMap<number, ErrorKind> = new Map(Object.entries(STATUS).map(([kind, status]) => [status, kind as ErrorKind]));

export function statusOf(kind: ErrorKind): number {
  return STATUS[kind];
}

/** The kind of an HTTP error answer; a status without a kind of its own is a bad request (4xx) or unavailability (5xx). */
export function kindOfStatus(status: number): ErrorKind {
  return KIND_OF_STATUS.get(status) ?? (status >= 500 ? 'unavailable' : 'invalid_input');
}
