/**
 * The registry token realm as a pipeline, free of any HTTP framework (server.ts moves the bytes,
 * realm/render.ts writes them):
 *
 *   request (realm/request.ts) -> authenticate (realm/authenticate.ts: Tollgate's tokens first,
 *   then the account authenticators) -> authorize (realm/authorize.ts: the token policy or the
 *   ACL) -> issue (realm/issue.ts) -> a typed RealmOutcome.
 *
 * Every decision reads the credential's current state together with its device's and CA's (the
 * authority's standing), so a revocation stops tokens already handed out at once. Every refusal
 * and every issuance is one event of the authority (`realm.refused`, `realm.token_issued`): one
 * audit record, written before the answer goes out.
 */
import { record, type AuthorityDeps } from '../shared/authority/index.js';
import { realmUrl, type Config } from '../shared/config.js';
import { isTollgateError } from '../shared/errors.js';
import { statusOf } from '../shared/http/status.js';
import type { RateLimitedAnswer } from '../shared/http/rate-limited.js';
import type { Logger } from '../shared/log.js';
import type { Acl } from './acl.js';
import type { AccountAuthenticator, AuthnContext, AuthorizationHook } from './authn/types.js';
import { accountLink, authenticate, tollgateSecrets } from './realm/authenticate.js';
import { accountAcl, authorize, tokenPolicy } from './realm/authorize.js';
import { issueToken, subjectOf, type IssueSettings } from './realm/issue.js';
import { dialectOf, invalidRequest, methodNotAllowed, readTokenRequest, RequestError } from './realm/request.js';
import type { Dialect, RealmOutcome, RealmRequest, Refusal, TokenRequest } from './realm/types.js';

export { formatAccess } from './realm/issue.js';
export { renderRealm, type RealmResponse } from './realm/render.js';
export type { RealmOutcome, RealmRequest } from './realm/types.js';

export type Realm = ((request: RealmRequest) => Promise<RealmOutcome>) & {
  /** The realm URL registries send clients to; named in the Basic challenge. */
  readonly realmUrl: string;
};

export interface RealmSettings extends IssueSettings {
  realmUrl: string;
}

/** Clients that are not devices or API tokens: people and machines (see authn/index.ts). */
export interface RealmAccounts {
  /** Asked in order after Tollgate's own tokens; the first not to pass decides. */
  authenticators: readonly AccountAuthenticator[];
  acl: Acl;
  authorizationHook?: AuthorizationHook;
}

export interface RealmOptions {
  settings: RealmSettings;
  deps: Pick<AuthorityDeps, 'store' | 'now' | 'events'>;
  keyring: { requireActive(): import('./jwt.js').SigningKey };
  log?: Logger;
  /** Absent: only Tollgate secrets are accepted. */
  accounts?: RealmAccounts;
  /**
   * The per-subject rate limit, asked with the actor the credentials proved (`device:<uuid>`,
   * `token:<id>`, `user:<name>`...), never with a name they merely claim: a 429 answer, or null.
   */
  limitSubject?: (subject: string) => Promise<RateLimitedAnswer | null>;
}

export const AUDIT_REFUSED = 'realm.refused';
export const AUDIT_ISSUED = 'realm.token_issued';

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

export function createRealm({ settings, deps, keyring, log, accounts, limitSubject }: RealmOptions): Realm {
  const chain = [tollgateSecrets(deps), ...(accounts?.authenticators ?? []).map(accountLink)];
  const hasAccounts = (accounts?.authenticators.length ?? 0) > 0;
  const authorizers = [tokenPolicy, ...(accounts ? [accountAcl(accounts.acl, accounts.authorizationHook)] : [])];
  const issuer = { settings, deps, keyring };

  /** Records the refusal (`realm.refused`) and says how it is answered. */
  async function refuse(request: TokenRequest, refusal: Refusal): Promise<RealmOutcome> {
    const party = refusal.party ?? { actor: 'anonymous', target: null, factoryId: null };
    await record(deps, { type: 'realm.refused', ...party, reason: refusal.reason, source: request.source, details: { method: request.method } });
    const { dialect } = request;
    if (refusal.unavailable) {
      log?.warn({ reason: refusal.reason, actor: party.actor, source: request.source }, 'token request could not be decided');
      return { kind: 'unavailable', dialect, reason: refusal.reason, message: refusal.message };
    }
    // RFC 6749 section 5.2: an invalid, expired or revoked refresh token is invalid_grant, 400.
    const status = request.via === 'refresh_token' ? 400 : 401;
    return { kind: 'refused', dialect, status, reason: refusal.reason, message: refusal.message };
  }

  async function run(request: RealmRequest, dialect: Dialect): Promise<RealmOutcome> {
    const tokenRequest = readTokenRequest(request, dialect, settings.service);
    const context: AuthnContext = { now: deps.now(), source: request.source, service: settings.service };
    const auth = await authenticate(chain, tokenRequest.credentials, context, hasAccounts);
    if (!auth.ok) return refuse(tokenRequest, auth.refusal);
    const limited = (await limitSubject?.(subjectOf(auth.identity).party.actor)) ?? null;
    if (limited) return { kind: 'rate_limited', dialect, answer: limited };
    const access = await authorize(authorizers, auth.identity, tokenRequest.scopes, context);
    return { kind: 'issued', dialect, token: await issueToken(issuer, tokenRequest, auth.identity, access) };
  }

  const realm = async (request: RealmRequest): Promise<RealmOutcome> => {
    const dialect = dialectOf(request.method);
    if (dialect === null) return { kind: 'invalid', dialect: 'registry', ...methodNotAllowed(request.method) };
    try {
      return await run(request, dialect);
    } catch (e) {
      return failure(e, dialect, log);
    }
  };
  return Object.assign(realm, { realmUrl: settings.realmUrl });
}

/** A request error, or a TollgateError thrown on the way (scope too large, store busy, no signing key). */
function failure(e: unknown, dialect: Dialect, log: Logger | undefined): RealmOutcome {
  if (e instanceof RequestError) return { kind: 'invalid', dialect, ...e.invalid };
  if (!isTollgateError(e)) {
    log?.error({ err: e }, 'token request failed');
    return { kind: 'failed', dialect };
  }
  if (e.kind === 'unavailable') {
    log?.warn({ code: e.code }, 'token request could not be served');
    return { kind: 'unavailable', dialect, reason: e.code, message: e.message };
  }
  if (e.kind === 'invalid_input') {
    return { kind: 'invalid', dialect, ...invalidRequest(e.code, e.message, { oauthError: e.code.startsWith('scope_') ? 'invalid_scope' : 'invalid_request' }) };
  }
  return { kind: 'invalid', dialect, status: statusOf(e.kind), reason: e.code, message: e.message, registryCode: e.kind.toUpperCase(), oauthError: 'invalid_request' };
}
