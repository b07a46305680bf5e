import { authenticateSecret, refusalMessage, type AuthorityDeps, type RefusalReason } from '../../shared/authority/index.js';
import { secretKind } from '../../shared/secrets.js';
import type { TokenAuthView } from '../../shared/store/types.js';
import type { AccountAuthenticator, AuthnContext } from '../authn/types.js';
import type { Subject } from '../policy.js';
import type { Identity, Party, PresentedCredentials, Refusal } from './types.js';

/**
 * Authentication, docker_auth style: a chain of authenticators asked in order, where the first one
 * that does not pass decides. Tollgate's own secrets (device, API and refresh tokens, recognised by
 * their prefix) come first; the account authenticators (authn/) follow.
 */

/**
 * `pass` with a `veto`: credentials this link owns and refused. The chain asks on, so what the client
 * sees is the same as for credentials nobody owns, but a later acceptance turns into this refusal.
 */
export type ChainOutcome = { decision: 'pass'; veto?: Refusal } | { decision: 'accept'; identity: Identity } | { decision: 'refuse'; refusal: Refusal };

export interface RealmAuthenticator {
  authenticate(credentials: PresentedCredentials, context: AuthnContext): Promise<ChainOutcome>;
}

const PASS: ChainOutcome = { decision: 'pass' };

function refusal(reason: RefusalReason, party: Party | null = null): ChainOutcome {
  return { decision: 'refuse', refusal: { reason, message: refusalMessage(reason), party } };
}

/** Whose token it is: a device's tokens stand for the device, an API token's refresh tokens for the API token. */
export function tokenParty(token: TokenAuthView): Party {
  if (token.deviceUuid !== null) return { actor: `device:${token.deviceUuid}`, target: token.deviceUuid, factoryId: token.factoryId };
  const tokenId = token.kind === 'api' ? token.id : token.subject;
  return { actor: `token:${tokenId}`, target: tokenId, factoryId: token.factoryId };
}

/** What the token policy (policy.ts) judges a token as. */
function subjectOf(token: TokenAuthView): Subject {
  if (token.deviceUuid !== null) return { kind: 'device', factory: token.factoryName, device: token.deviceUuid };
  return { kind: 'api-token', factory: token.factoryName, tokenId: token.kind === 'api' ? token.id : token.subject, scopes: token.scopes };
}

/** The first authenticator: Tollgate's secrets, judged by the authority (shared/authority/standing.ts). */
export function tollgateSecrets(deps: Pick<AuthorityDeps, 'store' | 'now'>): RealmAuthenticator {
  return {
    async authenticate(credentials, context) {
      if (credentials.kind === 'unreadable') return PASS;
      let standing;
      if (credentials.kind === 'refresh_token') {
        standing = await authenticateSecret(deps, credentials.secret, { kinds: ['refresh'], username: null, service: context.service });
      } else {
        const kind = secretKind(credentials.password);
        if (kind === null) return PASS; // not a Tollgate secret: an account's credentials
        // Refresh tokens travel only in the refresh_token grant, where the OAuth2 rules for them apply.
        if (kind === 'refresh') return refusal('refresh_token_not_allowed');
        standing = await authenticateSecret(deps, credentials.password, { kinds: ['device', 'api'], username: credentials.username, service: context.service });
      }
      if (!standing.ok) return refusal(standing.reason, standing.token ? tokenParty(standing.token) : null);
      return { decision: 'accept', identity: { kind: 'token', token: standing.token, subject: subjectOf(standing.token) } };
    },
  };
}

/** Longest presented account name kept in the audit trail (any real one is shorter). */
const MAX_PRESENTED_NAME_LENGTH = 256;

/**
 * Who credentials claimed to be, for the audit trail, even when nobody could vouch for it: the name
 * the authenticator read from them, else the Basic username as presented.
 */
function presentedParty(origin: string, name: string): Party {
  const clipped = name.length > MAX_PRESENTED_NAME_LENGTH ? `${name.slice(0, MAX_PRESENTED_NAME_LENGTH)}...` : name;
  return { actor: `${origin}:${clipped}`, target: null, factoryId: null };
}

/** An account authenticator (static users, OIDC, AWS identity, hooks) as a link of the chain. */
export function accountLink(authenticator: AccountAuthenticator): RealmAuthenticator {
  return {
    async authenticate(credentials, context) {
      if (credentials.kind !== 'basic') return PASS;
      const outcome = await authenticator.authenticate({ username: credentials.username, password: credentials.password }, context);
      const party = (account?: string) => presentedParty(authenticator.origin, account ?? credentials.username);
      switch (outcome.decision) {
        case 'pass':
          if (!outcome.veto) return PASS;
          return { decision: 'pass', veto: { reason: outcome.veto.reason, message: outcome.veto.message, party: party(outcome.veto.account) } };
        case 'accept':
          return { decision: 'accept', identity: { kind: 'account', principal: outcome.principal } };
        case 'refuse':
          return { decision: 'refuse', refusal: { reason: outcome.reason, message: outcome.message, party: party(outcome.account) } };
        case 'fail':
          return { decision: 'refuse', refusal: { reason: outcome.reason, message: outcome.message, party: party(), unavailable: true } };
      }
    },
  };
}

export type Authentication = { ok: true; identity: Identity } | { ok: false; refusal: Refusal };

/**
 * Runs the chain. Credentials nobody claims are refused as `secret_malformed` when no account
 * authenticator is configured (the password can only have been meant as a token), else as
 * `credentials_unknown`.
 */
export async function authenticate(
  chain: readonly RealmAuthenticator[],
  credentials: PresentedCredentials,
  context: AuthnContext,
  hasAccounts: boolean,
): Promise<Authentication> {
  if (credentials.kind === 'unreadable') return { ok: false, refusal: { reason: credentials.reason, message: credentials.message, party: null } };
  let veto: Refusal | undefined;
  for (const link of chain) {
    const outcome = await link.authenticate(credentials, context);
    if (outcome.decision === 'pass') veto ??= outcome.veto;
    if (outcome.decision === 'accept') return veto ? { ok: false, refusal: veto } : { ok: true, identity: outcome.identity };
    if (outcome.decision === 'refuse') return { ok: false, refusal: outcome.refusal };
  }
  // Nobody vouched: the answer is the one for credentials nobody owns, whoever vetoed; the audit
  // trail keeps the name presented.
  const reason: RefusalReason = hasAccounts ? 'credentials_unknown' : 'secret_malformed';
  const party = veto?.party ?? (hasAccounts && credentials.kind === 'basic' ? presentedParty('account', credentials.username) : null);
  return { ok: false, refusal: { reason, message: refusalMessage(reason), party } };
}
