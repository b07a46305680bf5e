import { parseScopeParams } from '../scope.js';
import type { Dialect, InvalidRequest, PresentedCredentials, RealmRequest, TokenRequest } from './types.js';

/**
 * Reads a token request, GET or POST, into one TokenRequest; a malformed request is a RequestError
 * (400). The scope parser's own errors (TollgateError invalid_input, `scope_*`) pass through.
 */

/** Longest `client_id` kept: it is free text from the client, recorded in the audit trail. */
const MAX_CLIENT_ID_LENGTH = 128;
const PRINTABLE = /^[\u0020-\u007e]*$/;

export class RequestError extends Error {
  constructor(readonly invalid: InvalidRequest) {
    super(invalid.message);
  }
}

export function invalidRequest(reason: string, message: string, codes: { oauthError?: string; registryCode?: string } = {}): InvalidRequest {
  return { status: 400, reason, message, registryCode: codes.registryCode ?? 'INVALID_REQUEST', oauthError: codes.oauthError ?? 'invalid_request' };
}

const bad = (reason: string, message: string, codes?: { oauthError?: string; registryCode?: string }) => new RequestError(invalidRequest(reason, message, codes));

/** The dialect a method speaks; null for a method the realm does not take. */
export function dialectOf(method: string): Dialect | null {
  return method === 'GET' ? 'registry' : method === 'POST' ? 'oauth' : null;
}

export function methodNotAllowed(method: string): InvalidRequest {
  return { status: 405, reason: 'method_not_allowed', message: `${method} is not allowed here; use GET or POST`, registryCode: 'INVALID_REQUEST', oauthError: 'invalid_request', headers: { Allow: 'GET, POST' } };
}

/**
 * The first parameter given more than once, except those in `repeatable`: GET repeats `scope` by
 * design, while POST sends one space-separated `scope` value, so there nothing may repeat.
 */
function repeatedParameter(params: URLSearchParams, repeatable: readonly string[]): string | null {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name) && !repeatable.includes(name)) return name;
    seen.add(name);
  }
  return null;
}

function optionalClientId(value: string | null): string | null {
  if (value === null || value === '') return null;
  if (value.length > MAX_CLIENT_ID_LENGTH || !PRINTABLE.test(value)) {
    throw bad('client_id_invalid', `client_id must be at most ${MAX_CLIENT_ID_LENGTH} printable ASCII characters`);
  }
  return value;
}

const required = (value: string | null): value is string => value !== null && value !== '';

/** GET ("Requesting a Token"): the Basic header carries the credentials, `scope` may repeat. */
function readGet(request: RealmRequest, service: string): TokenRequest {
  const { query } = request;
  const repeated = repeatedParameter(query, ['scope']);
  if (repeated !== null) throw bad('parameter_repeated', `parameter "${repeated}" may appear only once`);
  const asked = query.get('service');
  if (asked !== null && asked !== service) throw bad('service_unknown', `this realm issues tokens for service "${service}" only`, { registryCode: 'INVALID_SERVICE' });
  const clientId = optionalClientId(query.get('client_id'));
  const scopes = parseScopeParams(query.getAll('scope'));
  // `account` (optional; distribution token spec) is left unread: the Basic username says who asks.
  const basic = request.basic;
  const credentials: PresentedCredentials = basic.ok
    ? { kind: 'basic', ...basic.credentials }
    : { kind: 'unreadable', reason: basic.reason, message: basic.message };
  return { dialect: 'registry', via: 'basic', credentials, scopes, clientId, offline: query.get('offline_token') === 'true', method: request.method, source: request.source };
}

/** POST ("OAuth2 Token Authentication"): a form with the password or the refresh_token grant. */
function readPost(request: RealmRequest, service: string): TokenRequest {
  const form = new URLSearchParams(request.body ?? '');
  const repeated = repeatedParameter(form, []);
  if (repeated !== null) throw bad('parameter_repeated', `field "${repeated}" may appear only once`);
  const grantType = form.get('grant_type');
  if (!required(grantType)) throw bad('grant_type_missing', 'grant_type is required');
  if (grantType !== 'password' && grantType !== 'refresh_token') {
    throw bad('grant_type_unsupported', 'grant_type must be password or refresh_token', { oauthError: 'unsupported_grant_type' });
  }
  // OAuth2 Token Authentication, Request fields: service and client_id are required.
  const clientIdField = form.get('client_id');
  if (!required(clientIdField)) throw bad('client_id_missing', 'client_id is required');
  const clientId = optionalClientId(clientIdField);
  const asked = form.get('service');
  if (!required(asked)) throw bad('service_missing', 'service is required');
  if (asked !== service) throw bad('service_unknown', `this realm issues tokens for service "${service}" only`);
  const scopeField = form.get('scope');
  const scopes = parseScopeParams(scopeField === null ? [] : [scopeField]);

  let credentials: PresentedCredentials;
  if (grantType === 'password') {
    const username = form.get('username');
    const password = form.get('password');
    if (!required(username)) throw bad('username_missing', 'username is required for the password grant');
    if (!required(password)) throw bad('password_missing', 'password is required for the password grant');
    credentials = { kind: 'basic', username, password };
  } else {
    const secret = form.get('refresh_token');
    if (!required(secret)) throw bad('refresh_token_missing', 'refresh_token is required for the refresh_token grant');
    credentials = { kind: 'refresh_token', secret };
  }
  return { dialect: 'oauth', via: grantType, credentials, scopes, clientId, offline: form.get('access_type') === 'offline', method: request.method, source: request.source };
}

export function readTokenRequest(request: RealmRequest, dialect: Dialect, service: string): TokenRequest {
  return dialect === 'registry' ? readGet(request, service) : readPost(request, service);
}
