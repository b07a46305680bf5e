import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Console sessions. A browser holds only an opaque session id in an HttpOnly, SameSite=Strict
 * cookie (Secure, with the __Host- prefix, when the console is served over TLS); never a token.
 * What the session stands for is kept here, in the admin process:
 * - `token`: the SHA-256 of the API token the person signed in with, checked again on every
 *   request, so revoking or expiring the token ends the session too;
 * - `person`: someone the OpenID Connect provider vouched for, with the factory and scopes the
 *   configuration maps their claims to;
 * - `operator`: opened with the one-time link `tollgate console` prints on the Tollgate host.
 *
 * Each session has its own CSRF token, which every state-changing request must echo in the
 * X-CSRF-Token header. Sessions end on logout, after `idleMs` without a request, and after
 * MAX_AGE_MS in any case. They live in memory: a restart of the admin process signs everyone out.
 */

export type SessionGrant =
  | { kind: 'token'; secretHash: string; tokenId: string }
  | { kind: 'person'; identity: string; factoryId: string; scopes: readonly string[] }
  | { kind: 'operator' };

export interface Session {
  grant: SessionGrant;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

/** Sessions end after this long whatever their activity. */
export const MAX_AGE_MS = 12 * 3_600_000;
/** Beyond this many live sessions the least recently used one is ended first. */
const MAX_SESSIONS = 10_000;

const hashId = (id: string) => createHash('sha256').update(id, 'utf8').digest('hex');

export class SessionStore {
  /** By the SHA-256 of the session id, so a heap dump does not hand out live cookies. */
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly idleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a session; returns the id for the cookie (256 random bits) and the session. */
  open(grant: SessionGrant): { id: string; session: Session } {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const session: Session = { grant, csrfToken: randomBytes(32).toString('base64url'), createdAt: now, lastSeenAt: now };
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(hashId(id), session);
    return { id, session };
  }

  /** The live session with this id, its idle clock restarted; undefined when unknown or expired. */
  touch(id: string): Session | undefined {
    const key = hashId(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.now();
    if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > MAX_AGE_MS) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastSeenAt = now;
    // Re-inserted so the map's order is least recently used first.
    this.sessions.delete(key);
    this.sessions.set(key, session);
    return session;
  }

  close(id: string): void {
    this.sessions.delete(hashId(id));
  }

  /** When the session ends if idle from now on. */
  expiresAt(session: Session): number {
    return Math.min(session.lastSeenAt + this.idleMs, session.createdAt + MAX_AGE_MS);
  }
}

/** Cookie names: __Host- binds a Secure cookie to this exact origin and path /. */
export function cookieName(secure: boolean, base: string): string {
  return secure ? `__Host-${base}` : base;
}

export const SESSION_COOKIE = 'tollgate_session';

/** A cookie's value from the request's Cookie header (first occurrence), if present. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

export interface CookieOptions {
  secure: boolean;
  sameSite: 'Strict' | 'Lax';
  /** Seconds; 0 deletes the cookie; absent: a browser-session cookie. */
  maxAge?: number;
  path?: string;
}

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return [
    `${name}=${value}`,
    `Path=${o.path ?? '/'}`,
    'HttpOnly',
    `SameSite=${o.sameSite}`,
    ...(o.secure ? ['Secure'] : []),
    ...(o.maxAge !== undefined ? [`Max-Age=${o.maxAge}`] : []),
  ].join('; ');
}
