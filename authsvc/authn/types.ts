/**
 * The realm's authenticators for accounts: clients that are not enrolled devices or factory API
 * tokens (those are Tollgate secrets, authenticated by the realm against the store).
 *
 * An authenticator looks at HTTP Basic credentials and either passes (not its kind of
 * credential: the next one is asked), accepts (an account principal with labels), refuses (its
 * kind, but wrong: 401) or fails (it could not decide, e.g. its provider or hook is down: 503).
 * It grants nothing: the ACL and the authorization hook decide what an account may do.
 */
import type { BasicCredentials } from '../credentials.js';

/** Which authenticator vouched for an account; ACL rules can match on it. */
export type AccountOrigin = 'user' | 'oidc' | 'aws' | 'hook';

/** docker_auth-style labels: each name has one or more values. */
export type Labels = Readonly<Record<string, readonly string[]>>;

export interface AccountPrincipal {
  origin: AccountOrigin;
  /** The account the ACL matches on; also the registry JWT's `sub`. */
  account: string;
  labels: Labels;
}

export interface AuthnContext {
  /** Milliseconds since the epoch, from the realm's clock. */
  now: number;
  /** The client's address, if known. */
  source: string | null;
  /** The service the token is asked for. */
  service: string;
}

/** Why credentials were refused; `account` is who they claimed to be, if known. */
export interface AuthnRefusal {
  reason: string;
  message: string;
  account?: string;
}

export type AuthnOutcome =
  /**
   * Not decided here: the next authenticator is asked. With a `veto`, these are credentials this
   * authenticator owns and refused: asking on keeps what the client sees the same as for credentials
   * nobody owns, but a later acceptance turns into this refusal.
   */
  | { decision: 'pass'; veto?: AuthnRefusal & { account: string } }
  | { decision: 'accept'; principal: AccountPrincipal }
  /** `reason` is a stable snake_case code for the audit trail; `account` is who it claimed to be, if known. */
  | { decision: 'refuse'; reason: string; message: string; account?: string }
  /** Could not decide; the realm answers 503 and issues nothing (fail closed). */
  | { decision: 'fail'; reason: string; message: string };

export interface AccountAuthenticator {
  readonly origin: AccountOrigin;
  authenticate(credentials: BasicCredentials, context: AuthnContext): Promise<AuthnOutcome>;
  /** Releases timers, sockets, child processes. */
  close?(): Promise<void>;
}

/** One resource the ACL granted actions on, as the authorization hook sees it. */
export interface AuthorizationQuestion {
  account: string;
  origin: AccountOrigin;
  labels: Labels;
  type: 'repository' | 'registry';
  name: string;
  /** What the ACL allows of what was asked; the hook may only narrow it. */
  actions: readonly string[];
}

export interface AuthorizationHook {
  /**
   * The subset of `question.actions` the site's own rules allow. Any failure (time-out, crash,
   * unreadable answer) must resolve to [] (fail closed), never throw.
   */
  authorize(question: AuthorizationQuestion, context: AuthnContext): Promise<string[]>;
  close?(): Promise<void>;
}

export const PASS: AuthnOutcome = Object.freeze({ decision: 'pass' });
