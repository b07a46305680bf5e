/**
 * The registry token realm, free of any HTTP framework: a request goes in as plain data, a
 * response comes out as plain data. server.ts only moves bytes.
 *
 * Two dialects of the same exchange (distribution token spec):
 * - GET with HTTP Basic ("Requesting a Token"): errors in the registry's `{"errors": [...]}` form;
 * - POST with a form ("OAuth2 Token Authentication": password and refresh_token grants): errors in
 *   the OAuth2 form `{"error": ..., "error_description": ...}` (RFC 6749 section 5.2).
 *
 * A credential is a Tollgate secret looked up by its hash. Every decision reads the token's
 * current state together with its device's and CA's, so a revocation stops tokens already handed
 * out at once. Every refusal and every issuance leaves one audit record; a successful request costs
 * one store read and one store write.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthorityDeps } from '../shared/authority/index.js';
import { realmUrl, type Config } from '../shared/config.js';
import { isTollgateError, type TollgateError } from '../shared/errors.js';
import { statusOf } from '../shared/http/status.js';
import type { Logger } from '../shared/log.js';
import { constantTimeEqual, hashSecret, newSecret, newTokenId, secretKind, type SecretKind } from '../shared/secrets.js';
import type { AuditEntry, NewTokenRecord, TokenAuthView } from '../shared/store/types.js';
import type { Acl } from './acl.js';
import type { AccountAuthenticator, AccountPrincipal, AuthorizationHook } from './authn/types.js';
import { parseBasicAuthorization, type BasicCredentials } from './credentials.js';
import { signRegistryToken, type KeyHint, type SigningKey } from './jwt.js';
import { grant, type AccessEntry, type Subject } from './policy.js';
import { parseScopeParams, type ResourceScope } from './scope.js';

export interface RealmRequest {
  method: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The raw request body (POST), already size-checked and decoded as UTF-8. */
  body?: string;
  /** The client's address, for the audit trail. */
  source: string | null;
}

export interface RealmResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Realm = (request: RealmRequest) => Promise<RealmResponse>;

export interface RealmSettings {
  /** The realm URL registries send clients to; named in the Basic challenge. */
  realmUrl: string;
  service: string;
  issuer: string;
  tokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** What the JWT header names its key by (default x5c). */
  keyHint?: KeyHint;
}

/** Clients that are not devices or API tokens: people and machines (see authn/index.ts). */
export interface RealmAccounts {
  /** Asked in order for credentials that are not Tollgate secrets; the first not to pass decides. */
  authenticators: readonly AccountAuthenticator[];
  acl: Acl;
  authorizationHook?: AuthorizationHook;
}

export interface RealmOptions {
  settings: RealmSettings;
  deps: Pick<AuthorityDeps, 'store' | 'now'>;
  keyring: { requireActive(): SigningKey };
  log?: Logger;
  /** Absent: only Tollgate secrets are accepted. */
  accounts?: RealmAccounts;
}

export const AUDIT_REFUSED = 'realm.refused';
export const AUDIT_ISSUED = 'realm.token_issued';

/** Longest `client_id` kept: it is free text from the client, recorded in the audit trail. */
const MAX_CLIENT_ID_LENGTH = 128;
const PRINTABLE = /^[\u0020-\u007e]*$/;

/** The settings as Tollgate's configuration has them; `realm` overrides the URL (e.g. port 0 resolved). */
export function realmSettings(config: Config, realm?: string): RealmSettings {
  return {
    realmUrl: realm ?? realmUrl(config),
    service: config.authsvc.service,
    issuer: config.authsvc.issuer,
    tokenTtlSeconds: config.authsvc.tokenTtlSeconds,
    refreshTokenTtlSeconds: config.authsvc.refreshTokenTtlSeconds,
    keyHint: config.authsvc.tokenKeyHint,
  };
}

// ---- responses ------------------------------------------------------------------------------

/** Token responses are credentials: no cache may keep them (RFC 6749 section 5.1). */
const BASE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'application/json',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
};

function json(status: number, body: unknown, extra: Record<string, string> = {}): RealmResponse {
  return { status, headers: { ...BASE_HEADERS, ...extra }, body: JSON.stringify(body) };
}

type Dialect = 'registry' | 'oauth';

/** A refusal or a request error, rendered in the dialect of the request. */
interface Failure {
  status: number;
  /** Registry error code (GET) or OAuth2 error (POST). */
  registryCode: string;
  oauthError: string;
  /** Tollgate's stable code. */
  reason: string;
  message: string;
  retryAfter?: boolean;
}

function render(failure: Failure, dialect: Dialect, realm: string): RealmResponse {
  const headers: Record<string, string> = {};
  // RFC 7235 section 3.1: every 401 names a challenge. Quotes and backslashes in the realm URL are
  // escaped as quoted-string requires.
  if (failure.status === 401) {
    headers['WWW-Authenticate'] = `Basic realm="${realm.replace(/["\\]/g, '\\$&')}", charset="UTF-8"`;
  }
  if (failure.retryAfter) headers['Retry-After'] = '1';
  const body =
    dialect === 'registry'
      ? { errors: [{ code: failure.registryCode, message: failure.message, detail: { reason: failure.reason } }] }
      : { error: failure.oauthError, error_description: failure.message };
  return json(failure.status, body, headers);
}

function badRequest(reason: string, message: string, oauthError = 'invalid_request'): Failure {
  return { status: 400, registryCode: 'INVALID_REQUEST', oauthError, reason, message };
}

/** Maps a thrown TollgateError (scope too large, store busy, no signing key) to a Failure. */
function fromError(e: TollgateError): Failure {
  const status = statusOf(e.kind);
  if (e.kind === 'unavailable') {
    return { status, registryCode: 'UNAVAILABLE', oauthError: 'temporarily_unavailable', reason: e.code, message: e.message, retryAfter: true };
  }
  if (e.kind === 'invalid_input') {
    return badRequest(e.code, e.message, e.code.startsWith('scope_') ? 'invalid_scope' : 'invalid_request');
  }
  return { status, registryCode: e.kind.toUpperCase(), oauthError: 'invalid_request', reason: e.code, message: e.message };
}

// ---- authentication -------------------------------------------------------------------------

/** An account vouched for by one of the account authenticators; the ACL decides its access. */
interface AccountSubject {
  kind: 'account';
  principal: AccountPrincipal;
}

/** Who a credential stands for, once every check passed. */
interface Authenticated {
  /** The Tollgate token presented; null for an account. */
  token: TokenAuthView | null;
  subject: Subject | AccountSubject;
  /** JWT `sub`: the device UUID, the API token id (the Basic username), or the account name. */
  jwtSubject: string;
  actor: string;
  target: string | null;
  factoryId: string | null;
}

interface Refused {
  reason: string;
  message: string;
  /** Set when the token was found: whose refusal it is. */
  token: TokenAuthView | null;
  /** Who an account refusal is about, when the credentials named someone. */
  actor?: string;
  /** The authenticator could not decide (provider or hook down): 503, nothing issued. */
  unavailable?: boolean;
}

type AuthResult = { ok: true; who: Authenticated } | ({ ok: false } & Refused);

const REFUSAL_MESSAGES: Record<string, string> = {
  secret_malformed: 'the password is not a Tollgate token',
  credentials_unknown: 'the credentials are not valid',
  refresh_token_not_allowed: 'a refresh token is only accepted by the refresh_token grant',
  token_unknown: 'the credentials are not valid',
  username_mismatch: 'the username does not belong to this token',
  token_revoked: 'the token has been revoked',
  token_expired: 'the token has expired; obtain a new one',
  service_mismatch: 'the refresh token was issued for another service',
  device_unknown: 'the device of this token is not enrolled',
  device_revoked: 'the device is revoked',
  device_disabled: 'the device is disabled',
  device_pending: 'the device is awaiting activation',
  ca_revoked: 'the CA of the device is revoked',
  parent_token_unknown: 'the API token this refresh token came from no longer exists',
  parent_token_revoked: 'the API token this refresh token came from has been revoked',
  parent_token_expired: 'the API token this refresh token came from has expired',
};

function refusal(reason: keyof typeof REFUSAL_MESSAGES, token: TokenAuthView | null = null): { ok: false } & Refused {
  return { ok: false, reason, message: REFUSAL_MESSAGES[reason] ?? 'the credentials are not valid', token };
}

function actorOf(token: TokenAuthView): { actor: string; target: string } {
  if (token.deviceUuid !== null) return { actor: `device:${token.deviceUuid}`, target: token.deviceUuid };
  // An API token's refresh tokens stand for the API token, whose id is their subject.
  const tokenId = token.kind === 'api' ? token.id : token.subject;
  return { actor: `token:${tokenId}`, target: tokenId };
}

export function createRealm({ settings, deps, keyring, log, accounts }: RealmOptions): Realm {
  const { store } = deps;

  /**
   * Asks the account authenticators about credentials that are not a Tollgate secret. Tollgate's
   * own refusal when nobody claims them: `secret_malformed` when no account authenticator is
   * configured (the password can only have been meant as a token), else `credentials_unknown`.
   */
  async function authenticateAccount(credentials: BasicCredentials, request: RealmRequest): Promise<AuthResult> {
    if (!accounts || accounts.authenticators.length === 0) return refusal('secret_malformed');
    const context = { now: deps.now(), source: request.source, service: settings.service };
    for (const authenticator of accounts.authenticators) {
      const outcome = await authenticator.authenticate(credentials, context);
      if (outcome.decision === 'pass') continue;
      if (outcome.decision === 'accept') {
        const { principal } = outcome;
        const actor = `${principal.origin}:${principal.account}`;
        return {
          ok: true,
          who: { token: null, subject: { kind: 'account', principal }, jwtSubject: principal.account, actor, target: null, factoryId: null },
        };
      }
      if (outcome.decision === 'fail') {
        return { ok: false, reason: outcome.reason, message: outcome.message, token: null, actor: `${authenticator.origin}:?`, unavailable: true };
      }
      const actor = outcome.account !== undefined ? `${authenticator.origin}:${outcome.account}` : `${authenticator.origin}:?`;
      return { ok: false, reason: outcome.reason, message: outcome.message, token: null, actor };
    }
    return refusal('credentials_unknown');
  }

  /**
   * An account's access: the ACL's grant, then narrowed by the authorization hook if there is one.
   * The hook sees only what the ACL already allows, one resource at a time, and cannot widen it.
   */
  async function accountAccess(principal: AccountPrincipal, scopes: readonly ResourceScope[], request: RealmRequest): Promise<AccessEntry[]> {
    if (!accounts) return [];
    const access = accounts.acl.grant(principal, scopes);
    const hook = accounts.authorizationHook;
    if (!hook || access.length === 0) return access;
    const context = { now: deps.now(), source: request.source, service: settings.service };
    const narrowed = await Promise.all(
      access.map(async (entry) => {
        const allowed = new Set(
          await hook.authorize(
            { account: principal.account, origin: principal.origin, labels: principal.labels, type: entry.type as 'repository' | 'registry', name: entry.name, actions: entry.actions },
            context,
          ),
        );
        return { ...entry, actions: entry.actions.filter((a) => allowed.has(a)) };
      }),
    );
    return narrowed.filter((entry) => entry.actions.length > 0);
  }

  /**
   * Checks a secret of kind `kind`. `username` is the Basic username it must belong to (null on the
   * refresh_token grant, which has none); `service` the service a refresh token must be for.
   */
  async function authenticate(secret: string, kind: SecretKind, username: string | null, service: string): Promise<AuthResult> {
    const token = await store.findTokenBySecretHash(hashSecret(secret));
    // A stored kind that disagrees with the secret's prefix cannot happen for a secret Tollgate
    // made; treat it as unknown rather than trust either.
    if (!token || token.kind !== kind) return refusal('token_unknown');
    if (username !== null && !constantTimeEqual(username, token.subject)) return refusal('username_mismatch', token);
    const now = deps.now();
    if (token.revokedAt !== null) return refusal('token_revoked', token);
    if (token.expiresAt !== null && token.expiresAt <= now) return refusal('token_expired', token);
    if (kind === 'refresh' && token.service !== service) return refusal('service_mismatch', token);

    let subject: Subject;
    if (token.deviceUuid !== null) {
      if (token.deviceState === null) return refusal('device_unknown', token);
      if (token.caState === 'revoked') return refusal('ca_revoked', token);
      if (token.deviceState === 'revoked') return refusal('device_revoked', token);
      if (token.deviceState === 'disabled') return refusal('device_disabled', token);
      if (token.deviceState === 'pending') return refusal('device_pending', token);
      subject = { kind: 'device', factory: token.factoryName, device: token.deviceUuid };
    } else if (token.kind === 'device') {
      return refusal('token_unknown'); // a device token always names its device
    } else {
      if (token.kind === 'refresh') {
        // Revoking an API token must also stop what was refreshed from it.
        const parent = await store.getToken(token.subject);
        if (!parent || parent.kind !== 'api' || parent.factoryId !== token.factoryId) return refusal('parent_token_unknown', token);
        if (parent.revokedAt !== null) return refusal('parent_token_revoked', token);
        if (parent.expiresAt !== null && parent.expiresAt <= now) return refusal('parent_token_expired', token);
      }
      const tokenId = token.kind === 'api' ? token.id : token.subject;
      subject = { kind: 'api-token', factory: token.factoryName, tokenId, scopes: token.scopes };
    }
    return { ok: true, who: { token, subject, jwtSubject: token.subject, factoryId: token.factoryId, ...actorOf(token) } };
  }

  /**
   * Records a refusal and renders it: 401 for bad credentials; 400 for a bad refresh token, which
   * RFC 6749 section 5.2 makes an invalid_grant of the request rather than an authentication failure.
   */
  async function refuse(request: RealmRequest, dialect: Dialect, refused: Refused, status: 400 | 401): Promise<RealmResponse> {
    const who = refused.token ? actorOf(refused.token) : null;
    const actor = who?.actor ?? refused.actor ?? 'anonymous';
    await store.appendAudit({
      actor,
      action: AUDIT_REFUSED,
      outcome: 'denied',
      factoryId: refused.token?.factoryId ?? null,
      target: who?.target ?? null,
      reason: refused.reason,
      source: request.source,
      details: { method: request.method },
    });
    if (refused.unavailable) {
      log?.warn({ reason: refused.reason, actor, source: request.source }, 'token request could not be decided');
      return render(
        { status: 503, registryCode: 'UNAVAILABLE', oauthError: 'temporarily_unavailable', reason: refused.reason, message: refused.message, retryAfter: true },
        dialect,
        settings.realmUrl,
      );
    }
    log?.info({ reason: refused.reason, actor, source: request.source }, 'token request refused');
    return render(
      { status, registryCode: 'UNAUTHORIZED', oauthError: 'invalid_grant', reason: refused.reason, message: refused.message },
      dialect,
      settings.realmUrl,
    );
  }

  interface Issued {
    token: string;
    expiresIn: number;
    issuedAt: string;
    scope: string;
    refreshToken: string | null;
  }

  /**
   * Signs the registry token and records it: one store write, which also stores the new refresh
   * token when one is asked for.
   */
  async function issue(
    request: RealmRequest,
    who: Authenticated,
    scopes: readonly ResourceScope[],
    options: { offline: boolean; presentedRefreshToken: string | null; via: string; clientId: string | null },
  ): Promise<Issued> {
    const key = keyring.requireActive();
    const now = deps.now();
    const access = who.subject.kind === 'account' ? await accountAccess(who.subject.principal, scopes, request) : grant(who.subject, scopes);
    const signed = signRegistryToken(key, {
      issuer: settings.issuer,
      subject: who.jwtSubject,
      audience: settings.service,
      access,
      ttlSeconds: settings.tokenTtlSeconds,
      now: new Date(now),
    }, settings.keyHint);
    const scope = formatAccess(access);
    const audit: AuditEntry = {
      actor: who.actor,
      action: AUDIT_ISSUED,
      outcome: 'success',
      factoryId: who.factoryId,
      target: who.target,
      source: request.source,
      details: {
        scope,
        jti: signed.jti,
        kid: key.kid,
        via: options.via,
        ...(options.clientId !== null ? { clientId: options.clientId } : {}),
        ...(who.token?.kind === 'refresh' ? { refreshTokenId: who.token.id } : {}),
      },
    };

    let refreshToken: string | null = options.presentedRefreshToken;
    // Accounts get no refresh token: their credentials (a password, an OIDC token, an identity
    // document, a hook's verdict) are checked afresh on every token request.
    if (options.offline && refreshToken === null && who.token !== null) {
      const created = await newRefreshToken(who, who.token, now);
      refreshToken = created.secret;
      audit.details = { ...audit.details, refreshTokenId: created.record.id };
      await store.insertToken(created.record, audit);
    } else {
      await store.appendAudit(audit);
    }
    return {
      token: signed.token,
      expiresIn: settings.tokenTtlSeconds,
      // RFC 3339, whole seconds like the token's own iat.
      issuedAt: signed.issuedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      scope,
      refreshToken,
    };
  }

  /** A refresh token standing for the same subject, bound to this service, never outliving what it stands for. */
  async function newRefreshToken(who: Authenticated, token: TokenAuthView, now: number): Promise<{ secret: string; record: NewTokenRecord }> {
    let expiresAt = now + settings.refreshTokenTtlSeconds * 1000;
    if (token.expiresAt !== null && token.kind === 'api') expiresAt = Math.min(expiresAt, token.expiresAt);
    if (token.deviceUuid !== null) {
      // A device's credentials never outlive its certificate (as its device tokens do not).
      const device = await store.getDevice(token.deviceUuid);
      if (device) expiresAt = Math.min(expiresAt, device.notAfter);
    }
    const { secret, secretHash } = newSecret('refresh');
    return {
      secret,
      record: {
        id: newTokenId(),
        kind: 'refresh',
        factoryId: token.factoryId,
        deviceUuid: token.deviceUuid,
        scopes: [...token.scopes],
        description: null,
        service: settings.service,
        subject: who.jwtSubject,
        createdAt: now,
        expiresAt,
        secretHash,
      },
    };
  }

  // ---- GET ----------------------------------------------------------------------------------

  async function handleGet(request: RealmRequest): Promise<RealmResponse> {
    const { query } = request;
    const repeated = repeatedParameter(query, ['scope']);
    if (repeated !== null) throw failure(badRequest('parameter_repeated', `parameter "${repeated}" may appear only once`));
    const service = query.get('service');
    if (service !== null && service !== settings.service) {
      throw failure({ ...badRequest('service_unknown', `this realm issues tokens for service "${settings.service}" only`), registryCode: 'INVALID_SERVICE' });
    }
    const clientId = optionalClientId(query.get('client_id'));
    const scopes = parseScopeParams(query.getAll('scope'));
    // `account` (optional; distribution token spec, Requesting a Token) is left unread: the Basic
    // username, checked against the token, says who asks.

    const parsed = parseBasicAuthorization(request.headers.authorization);
    if (!parsed.ok) return refuse(request, 'registry', { reason: parsed.reason, message: parsed.message, token: null }, 401);
    const { username, password } = parsed.credentials;
    const kind = secretKind(password);
    // Refresh tokens travel only in the refresh_token grant, where the OAuth2 rules for them apply.
    if (kind === 'refresh') return refuse(request, 'registry', refusal('refresh_token_not_allowed'), 401);

    const auth =
      kind === null ? await authenticateAccount(parsed.credentials, request) : await authenticate(password, kind, username, settings.service);
    if (!auth.ok) return refuse(request, 'registry', auth, 401);
    const issued = await issue(request, auth.who, scopes, {
      offline: query.get('offline_token') === 'true',
      presentedRefreshToken: null,
      via: 'basic',
      clientId,
    });
    // distribution token spec, Token Response Fields: `token` alone suffices (`access_token` would be
    // the same JWT again); aktualizr-lite reads only `token`, and only 1024 bytes of the answer.
    return json(200, {
      token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(issued.refreshToken !== null ? { refresh_token: issued.refreshToken } : {}),
    });
  }

  // ---- POST ---------------------------------------------------------------------------------

  async function handlePost(request: RealmRequest): Promise<RealmResponse> {
    const form = new URLSearchParams(request.body ?? '');
    const repeated = repeatedParameter(form, []);
    if (repeated !== null) throw failure(badRequest('parameter_repeated', `field "${repeated}" may appear only once`));
    const grantType = form.get('grant_type');
    if (grantType === null || grantType === '') throw failure(badRequest('grant_type_missing', 'grant_type is required'));
    if (grantType !== 'password' && grantType !== 'refresh_token') {
      throw failure(badRequest('grant_type_unsupported', 'grant_type must be password or refresh_token', 'unsupported_grant_type'));
    }
    // OAuth2 Token Authentication, Request fields: service and client_id are required.
    const clientIdRaw = form.get('client_id');
    if (clientIdRaw === null || clientIdRaw === '') throw failure(badRequest('client_id_missing', 'client_id is required'));
    const clientId = optionalClientId(clientIdRaw);
    const service = form.get('service');
    if (service === null || service === '') throw failure(badRequest('service_missing', 'service is required'));
    if (service !== settings.service) {
      throw failure(badRequest('service_unknown', `this realm issues tokens for service "${settings.service}" only`));
    }
    const scopeField = form.get('scope');
    const scopes = parseScopeParams(scopeField === null ? [] : [scopeField]);

    let who: Authenticated;
    let presentedRefreshToken: string | null = null;
    if (grantType === 'password') {
      const username = form.get('username');
      const password = form.get('password');
      if (username === null || username === '') throw failure(badRequest('username_missing', 'username is required for the password grant'));
      if (password === null || password === '') throw failure(badRequest('password_missing', 'password is required for the password grant'));
      const kind = secretKind(password);
      if (kind === 'refresh') return refuse(request, 'oauth', refusal('refresh_token_not_allowed'), 401);
      const auth = kind === null ? await authenticateAccount({ username, password }, request) : await authenticate(password, kind, username, service);
      if (!auth.ok) return refuse(request, 'oauth', auth, 401);
      who = auth.who;
    } else {
      const refreshToken = form.get('refresh_token');
      if (refreshToken === null || refreshToken === '') throw failure(badRequest('refresh_token_missing', 'refresh_token is required for the refresh_token grant'));
      // RFC 6749 section 5.2: an invalid, expired or revoked refresh token is invalid_grant, 400.
      if (secretKind(refreshToken) !== 'refresh') return refuse(request, 'oauth', refusal('token_unknown'), 400);
      const auth = await authenticate(refreshToken, 'refresh', null, service);
      if (!auth.ok) return refuse(request, 'oauth', auth, 400);
      who = auth.who;
      // The same refresh token goes back: rotating it would cost a write and buys nothing while
      // the token stays bound to its subject's current state.
      presentedRefreshToken = refreshToken;
    }

    const issued = await issue(request, who, scopes, {
      offline: form.get('access_type') === 'offline',
      presentedRefreshToken,
      via: grantType,
      clientId,
    });
    return json(200, {
      access_token: issued.token,
      token_type: 'Bearer',
      scope: issued.scope,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      ...(issued.refreshToken !== null ? { refresh_token: issued.refreshToken } : {}),
    });
  }

  return async function realm(request: RealmRequest): Promise<RealmResponse> {
    const dialect: Dialect = request.method === 'POST' ? 'oauth' : 'registry';
    try {
      if (request.method === 'GET') return await handleGet(request);
      if (request.method === 'POST') return await handlePost(request);
      return json(405, { errors: [{ code: 'UNSUPPORTED', message: 'use GET or POST', detail: { reason: 'method_not_allowed' } }] }, { Allow: 'GET, POST' });
    } catch (e) {
      if (e instanceof FailureError) return render(e.failure, dialect, settings.realmUrl);
      if (isTollgateError(e)) {
        if (e.kind === 'unavailable') log?.warn({ code: e.code }, 'token request could not be served');
        return render(fromError(e), dialect, settings.realmUrl);
      }
      log?.error({ err: e }, 'token request failed');
      return dialect === 'registry'
        ? json(500, { errors: [{ code: 'UNKNOWN', message: 'internal error', detail: { reason: 'internal_error' } }] })
        : json(500, { error: 'server_error', error_description: 'internal error' });
    }
  };
}

class FailureError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

function failure(f: Failure): FailureError {
  return new FailureError(f);
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
    throw failure(badRequest('client_id_invalid', `client_id must be at most ${MAX_CLIENT_ID_LENGTH} printable ASCII characters`));
  }
  return value;
}

/** Granted access as the space-separated scope string of the OAuth2 response. */
export function formatAccess(access: readonly AccessEntry[]): string {
  return access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
}
