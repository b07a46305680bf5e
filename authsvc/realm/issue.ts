import { commit, type AuthorityDeps, type RegistryTokenIssuedDetails } from '../../shared/authority/index.js';
import { newSecret, newTokenId } from '../../shared/secrets.js';
import type { NewTokenRecord, TokenAuthView } from '../../shared/store/types.js';
import { signRegistryToken, type KeyHint, type SigningKey } from '../jwt.js';
import type { AccessEntry } from '../policy.js';
import { tokenParty } from './authenticate.js';
import type { Identity, IssuedToken, Party, TokenRequest } from './types.js';

/**
 * Issuing: the registry JWT, signed with the active key, and (asked for with an API token) a
 * refresh token; both recorded as one `realm.token_issued` event, in one store write.
 */

export interface IssueSettings {
  service: string;
  issuer: string;
  tokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** What the JWT header names its key by (default x5c). */
  keyHint?: KeyHint;
}

export interface Issuer {
  settings: IssueSettings;
  deps: Pick<AuthorityDeps, 'store' | 'now' | 'events'>;
  keyring: { requireActive(): SigningKey };
}

/** The JWT `sub` and the audit party of an identity. */
export function subjectOf(identity: Identity): { jwtSubject: string; party: Party } {
  if (identity.kind === 'token') return { jwtSubject: identity.token.subject, party: tokenParty(identity.token) };
  const { principal } = identity;
  return { jwtSubject: principal.account, party: { actor: `${principal.origin}:${principal.account}`, target: null, factoryId: null } };
}

/** Granted access as the space-separated scope string of the OAuth2 response. */
export function formatAccess(access: readonly AccessEntry[]): string {
  return access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
}

/** A refresh token standing for the same subject, bound to this service, never outliving what it stands for. */
function newRefreshToken(issuer: Issuer, token: TokenAuthView, now: number): { secret: string; record: NewTokenRecord } {
  const { settings } = issuer;
  let expiresAt = now + settings.refreshTokenTtlSeconds * 1000;
  if (token.expiresAt !== null) expiresAt = Math.min(expiresAt, token.expiresAt);
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
      subject: token.subject,
      createdAt: now,
      expiresAt,
      secretHash,
    },
  };
}

export async function issueToken(issuer: Issuer, request: TokenRequest, identity: Identity, access: AccessEntry[]): Promise<IssuedToken> {
  const { settings, deps } = issuer;
  const key = issuer.keyring.requireActive();
  const now = deps.now();
  const { jwtSubject, party } = subjectOf(identity);
  const claims = { issuer: settings.issuer, subject: jwtSubject, audience: settings.service, access, ttlSeconds: settings.tokenTtlSeconds, now: new Date(now) };
  const signed = signRegistryToken(key, claims, settings.keyHint);
  const scope = formatAccess(access);
  const presented = identity.kind === 'token' && identity.token.kind === 'refresh' ? identity.token : null;
  const details: RegistryTokenIssuedDetails = {
    scope,
    jti: signed.jti,
    kid: key.kid,
    via: request.via,
    ...(request.clientId !== null ? { clientId: request.clientId } : {}),
    ...(presented ? { refreshTokenId: presented.id } : {}),
  };
  const event = { type: 'realm.token_issued' as const, ...party, source: request.source, details };

  // The refresh grant gets the same refresh token back: rotating it would cost a write and buys
  // nothing while the token stays bound to its subject's current state. Only API tokens get a
  // refresh token. Accounts do not: their credentials (a password, an OIDC token, an identity
  // document, a hook's verdict) are checked afresh on every token request. Devices do not: their
  // credential is their key, and the gateway mints a fresh device token whenever the helper asks; a
  // refresh token would only be a second, longer-lived credential to steal, outliving the device
  // token it came from, the certificate's renewal and a key change.
  let refreshToken: string | null = request.credentials.kind === 'refresh_token' ? request.credentials.secret : null;
  if (request.offline && refreshToken === null && identity.kind === 'token' && identity.token.deviceUuid === null) {
    const created = newRefreshToken(issuer, identity.token, now);
    refreshToken = created.secret;
    details.refreshTokenId = created.record.id;
    await commit(deps, event, (audit) => deps.store.insertToken(created.record, audit));
  } else {
    await commit(deps, event, (audit) => deps.store.appendAudit(audit));
  }
  return {
    token: signed.token,
    expiresIn: settings.tokenTtlSeconds,
    issuedAt: signed.issuedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    scope,
    refreshToken,
  };
}
