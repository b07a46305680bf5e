import type { Dialect, IssuedToken, RealmOutcome } from './types.js';

/**
 * Every byte the realm answers, in one place: the token answer and the errors of both dialects.
 * - GET (distribution token spec, "Requesting a Token"): `{"token", "access_token", ...}`, errors as
 *   `{"errors": [{"code", "message", "detail": {"reason"}}]}`;
 * - POST ("OAuth2 Token Authentication"): `{"access_token", "token_type", "scope", ...}`, errors as
 *   `{"error", "error_description"}` (RFC 6749 section 5.2).
 */

export interface RealmResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Token responses are credentials: no cache may keep them (RFC 6749 section 5.1). */
const BASE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
};

function json(status: number, body: unknown, extra: Record<string, string> = {}): RealmResponse {
  return { status, headers: { ...BASE_HEADERS, ...extra }, body: JSON.stringify(body) };
}

/**
 * The GET answer (distribution token spec, Token Response Fields): `token` alone suffices
 * (`access_token` would be the same JWT again); aktualizr-lite reads only `token`, and only 1024
 * bytes of the answer.
 */
function registryToken(t: IssuedToken): unknown {
  return {
    token: t.token,
    expires_in: t.expiresIn,
    issued_at: t.issuedAt,
    ...(t.refreshToken !== null ? { refresh_token: t.refreshToken } : {}),
  };
}

/** The POST answer (OAuth2 Token Authentication). */
function oauthToken(t: IssuedToken): unknown {
  return {
    access_token: t.token,
    token_type: 'Bearer',
    scope: t.scope,
    expires_in: t.expiresIn,
    issued_at: t.issuedAt,
    ...(t.refreshToken !== null ? { refresh_token: t.refreshToken } : {}),
  };
}

interface ErrorFields {
  status: number;
  registryCode: string;
  oauthError: string;
  reason: string;
  message: string;
  headers?: Record<string, string>;
}

function error(dialect: Dialect, e: ErrorFields, realmUrl: string): RealmResponse {
  const headers: Record<string, string> = { ...e.headers };
  // RFC 7235 section 3.1: every 401 names a challenge. Quotes and backslashes in the realm URL are
  // escaped as quoted-string requires.
  if (e.status === 401) headers['WWW-Authenticate'] = `Basic realm="${realmUrl.replace(/["\\]/g, '\\$&')}", charset="UTF-8"`;
  const body =
    dialect === 'registry'
      ? { errors: [{ code: e.registryCode, message: e.message, detail: { reason: e.reason } }] }
      : { error: e.oauthError, error_description: e.message };
  return json(e.status, body, headers);
}

const RETRY_SOON = { 'Retry-After': '1' };

export function renderRealm(outcome: RealmOutcome, realmUrl: string): RealmResponse {
  const { dialect } = outcome;
  switch (outcome.kind) {
    case 'issued':
      return json(200, dialect === 'registry' ? registryToken(outcome.token) : oauthToken(outcome.token));
    case 'refused':
      return error(dialect, { ...outcome, registryCode: 'UNAUTHORIZED', oauthError: 'invalid_grant' }, realmUrl);
    case 'unavailable':
      return error(dialect, { ...outcome, status: 503, registryCode: 'UNAVAILABLE', oauthError: 'temporarily_unavailable', headers: RETRY_SOON }, realmUrl);
    case 'invalid':
      return error(dialect, outcome, realmUrl);
    case 'rate_limited': {
      const { answer } = outcome;
      // The OAuth2 form has no field for the reason; it rides along as `reason`.
      const body =
        dialect === 'registry'
          ? { errors: [{ code: 'TOOMANYREQUESTS', message: answer.message, detail: { reason: answer.reason } }] }
          : { error: 'invalid_request', error_description: answer.message, reason: answer.reason };
      return json(answer.status, body, answer.headers);
    }
    case 'failed':
      return dialect === 'registry'
        ? json(500, { errors: [{ code: 'UNKNOWN', message: 'internal error', detail: { reason: 'internal_error' } }] })
        : json(500, { error: 'server_error', error_description: 'internal error' });
  }
}
