import type { RateLimitedAnswer } from '../../shared/http/rate-limited.js';
import type { TokenAuthView } from '../../shared/store/types.js';
import type { AccountPrincipal } from '../authn/types.js';
import type { ParsedCredentials } from '../credentials.js';
import type { Subject } from '../policy.js';
import type { ResourceScope } from '../scope.js';

/**
 * The realm's data, stage by stage: a RealmRequest (plain data from the HTTP layer) is read into a
 * TokenRequest, authenticated into an Identity, authorized into access entries, issued as an
 * IssuedToken; every path ends in a RealmOutcome, which render.ts turns into bytes.
 */

/** GET with HTTP Basic answers in the registry's error form; POST (OAuth2 form) in RFC 6749's. */
export type Dialect = 'registry' | 'oauth';

export interface RealmRequest {
  method: string;
  query: URLSearchParams;
  /** The Authorization header, read as HTTP Basic by the HTTP layer (once per request). */
  basic: ParsedCredentials;
  /** The raw request body (POST), already size-checked and decoded as UTF-8. */
  body?: string;
  /** The client's address, for the audit trail. */
  source: string | null;
}

/** What a client presents: Basic credentials, a refresh token (the refresh_token grant), or an unreadable header. */
export type PresentedCredentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'refresh_token'; secret: string }
  | { kind: 'unreadable'; reason: string; message: string };

/** A token request, whichever dialect it came in. */
export interface TokenRequest {
  dialect: Dialect;
  /** How the client authenticated: `basic` (GET), `password` or `refresh_token` (the POST grants). */
  via: 'basic' | 'password' | 'refresh_token';
  credentials: PresentedCredentials;
  scopes: ResourceScope[];
  clientId: string | null;
  /** A refresh token is asked for (`offline_token=true`, `access_type=offline`). */
  offline: boolean;
  method: string;
  source: string | null;
}

/** Who a request was authenticated as: a Tollgate token (device, API or refresh) or an account. */
export type Identity = { kind: 'token'; token: TokenAuthView; subject: Subject } | { kind: 'account'; principal: AccountPrincipal };

/** Who a decision is about, in the audit trail. */
export interface Party {
  actor: string;
  target: string | null;
  factoryId: string | null;
}

export interface Refusal {
  reason: string;
  message: string;
  /** Who the credentials named, when known. */
  party: Party | null;
  /** The authenticator could not decide (its provider or hook is down): 503, nothing issued. */
  unavailable?: boolean;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  /** RFC 3339, whole seconds like the token's own iat. */
  issuedAt: string;
  /** The granted access as the OAuth2 scope string. */
  scope: string;
  refreshToken: string | null;
}

/** A request error: what is wrong with it, in both dialects' vocabularies. */
export interface InvalidRequest {
  status: number;
  reason: string;
  message: string;
  registryCode: string;
  oauthError: string;
  headers?: Record<string, string>;
}

export type RealmOutcome =
  | { kind: 'issued'; dialect: Dialect; token: IssuedToken }
  /** The credentials were refused: 401, or 400 invalid_grant for a refresh token (RFC 6749 section 5.2). */
  | { kind: 'refused'; dialect: Dialect; status: 400 | 401; reason: string; message: string }
  | { kind: 'unavailable'; dialect: Dialect; reason: string; message: string }
  | ({ kind: 'invalid'; dialect: Dialect } & InvalidRequest)
  | { kind: 'rate_limited'; dialect: Dialect; answer: RateLimitedAnswer }
  | { kind: 'failed'; dialect: Dialect };
