import { chmodSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import * as oidc from 'openid-client';
import { z } from 'zod';
import { TollgateError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/files.js';
import { usageError } from './failure.js';

/**
 * A person's OpenID Connect session for `tollgate login`: where it is kept, how the provider is
 * reached, and how its ID token is renewed. The session file holds a refresh token, so it lives in
 * a 0700 directory with mode 0600 and is replaced atomically.
 */

export const sessionSchema = z
  .object({
    issuer: z.string().url(),
    clientId: z.string().min(1),
    idToken: z.string().min(1),
    refreshToken: z.string().min(1).nullable(),
    /** When the ID token expires (ISO 8601). */
    expiresAt: z.string().datetime(),
    account: z.string().min(1),
    /** The claim that names the account, so that a renewed token is checked against the same one. */
    accountClaim: z.string().min(1).default('email'),
  })
  .strict();

export type LoginSession = z.infer<typeof sessionSchema>;

/** `$XDG_CONFIG_HOME/tollgate/login.json`, else `~/.config/tollgate/login.json`. */
export function sessionPath(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME?.trim();
  // The XDG spec says relative values are invalid and must be ignored.
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME?.trim() || homedir(), '.config');
  return join(base, 'tollgate', 'login.json');
}

const noSession = (path: string) => new TollgateError('unauthenticated', 'login_required', `no login session in ${path}; run tollgate login`);

export function readSession(path: string): LoginSession {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw noSession(path);
    throw new TollgateError('unavailable', 'login_session_unreadable', `cannot read ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TollgateError('unauthenticated', 'login_session_invalid', `${path} is not a login session; run tollgate login again`);
  }
  const result = sessionSchema.safeParse(parsed);
  if (!result.success) throw new TollgateError('unauthenticated', 'login_session_invalid', `${path} is not a login session; run tollgate login again`);
  return result.data;
}

export function writeSession(path: string, session: LoginSession): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An existing directory made by something else may be wider; the refresh token must not be readable by others.
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  writeFileAtomic(path, `${JSON.stringify(session, null, 2)}\n`, 0o600);
}

export function deleteSession(path: string): boolean {
  try {
    rmSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The issuer as a URL: https, or plain http on a loopback address only (a provider on this machine). */
export function issuerUrl(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw usageError('issuer_invalid', `--issuer must be a URL, not "${issuer.slice(0, 80)}"`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return url;
  throw usageError('issuer_insecure', `the issuer must be an https:// URL (plain http is allowed on a loopback address only), not ${url.origin}`);
}

/** The provider's configuration (discovery), for a public client. */
export async function discover(issuer: string, clientId: string): Promise<oidc.Configuration> {
  const url = issuerUrl(issuer);
  try {
    return await oidc.discovery(url, clientId, undefined, oidc.None(), {
      ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      timeout: 15,
    });
  } catch (e) {
    throw new TollgateError('unavailable', 'oidc_discovery_failed', `cannot read the OpenID configuration of ${issuer}: ${describe(e)}`);
  }
}

/** A one-line account of what went wrong with the provider, without any token. */
export function describe(e: unknown): string {
  if (e instanceof oidc.ResponseBodyError) return `${e.error}${e.error_description ? `: ${clip(e.error_description)}` : ''}`;
  if (e instanceof oidc.AuthorizationResponseError) return `${e.error}${e.error_description ? `: ${clip(e.error_description)}` : ''}`;
  if (e instanceof Error) {
    const cause = e.cause instanceof Error ? ` (${clip(e.cause.message)})` : '';
    return `${clip(e.message)}${cause}`;
  }
  return 'unknown error';
}

const clip = (s: string) => {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}...` : printable;
};

/** The account an ID token's claims name, or an error saying which claim is missing. */
export function accountOf(claims: Record<string, unknown> | undefined, accountClaim: string): string {
  const value = claims?.[accountClaim];
  if (typeof value !== 'string' || value.length === 0) {
    throw new TollgateError('unauthenticated', 'login_account_claim_missing', `the ID token has no ${accountClaim} claim to name your account; ask for the scope that carries it (--scope)`);
  }
  return value;
}

/** The session for a token response: the ID token's own expiry is the one that matters to the realm. */
export function sessionFrom(
  base: { issuer: string; clientId: string; accountClaim: string; previousRefreshToken?: string | null },
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
): LoginSession {
  if (!tokens.id_token) throw new TollgateError('unauthenticated', 'login_no_id_token', 'the provider returned no ID token; is the openid scope asked for?');
  const claims = tokens.claims();
  const account = accountOf(claims as Record<string, unknown> | undefined, base.accountClaim);
  const exp = claims?.exp;
  if (typeof exp !== 'number') throw new TollgateError('unauthenticated', 'login_no_id_token', 'the ID token has no expiry');
  return {
    issuer: base.issuer,
    clientId: base.clientId,
    idToken: tokens.id_token,
    refreshToken: tokens.refresh_token ?? base.previousRefreshToken ?? null,
    expiresAt: new Date(exp * 1000).toISOString(),
    account,
    accountClaim: base.accountClaim,
  };
}

/** Renews the ID token with the refresh token; the new session is stored and returned. */
export async function refreshSession(path: string, session: LoginSession): Promise<LoginSession> {
  if (!session.refreshToken) {
    throw new TollgateError('unauthenticated', 'login_expired', `the ID token has expired and there is no refresh token; run tollgate login again`);
  }
  const config = await discover(session.issuer, session.clientId);
  let renewed: LoginSession;
  try {
    const tokens = await oidc.refreshTokenGrant(config, session.refreshToken);
    renewed = sessionFrom({ ...session, previousRefreshToken: session.refreshToken }, tokens);
  } catch (e) {
    if (e instanceof TollgateError) throw e;
    // Another `tollgate login token` may have just renewed it (refresh tokens rotate): use its result.
    const current = (() => {
      try {
        return readSession(path);
      } catch {
        return undefined;
      }
    })();
    if (current && current.idToken !== session.idToken && Date.parse(current.expiresAt) > Date.now()) return current;
    const refused = e instanceof oidc.ResponseBodyError;
    throw new TollgateError(
      refused ? 'unauthenticated' : 'unavailable',
      'login_refresh_failed',
      `cannot renew the ID token (${describe(e)}); run tollgate login again`,
    );
  }
  if (renewed.account !== session.account) {
    throw new TollgateError(
      'unauthenticated',
      'login_account_changed',
      `the provider now names your account ${renewed.account}, not ${session.account}; run tollgate login again`,
    );
  }
  writeSession(path, renewed);
  return renewed;
}
