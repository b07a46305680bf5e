import type { Request, Response } from 'express';
import { API_TOKEN_SCOPES, recordConsoleSession, redeemConsoleSigninCode, type AuthorityDeps } from '../shared/authority/index.js';
import { forbidden, invalidInput, isTollgateError, unauthenticated } from '../shared/errors.js';
import { hashSecret, sameSecret, secretKind } from '../shared/secrets.js';
import type { Logger } from '../shared/log.js';
import type { ConsoleOidc } from './console-oidc.js';
import type { AdminService, Principal } from './service.js';
import { SESSION_COOKIE, cookieName, readCookie, serializeCookie, type Session, type SessionGrant, type SessionStore } from './session.js';

/**
 * How a browser signs in to the console and what its session stands for. The session resolves to
 * the same Principal a bearer token does, so the AdminService's checks (the one home of the admin
 * API's authorization) apply to console requests unchanged.
 */

const OIDC_COOKIE = 'tollgate_oidc';
const OIDC_COOKIE_PATH = '/v1/session/oidc';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface ConsoleAuthOptions {
  deps: AuthorityDeps;
  service: AdminService;
  sessions: SessionStore;
  /** Console cookies get Secure and the __Host- prefix (the console is reached over TLS). */
  secure: boolean;
  oidc?: ConsoleOidc;
  log?: Logger;
}

export interface SessionView {
  kind: 'operator' | 'token' | 'person';
  identity: string;
  factory: string | null;
  scopes: string[];
  csrfToken: string;
  expiresAt: string;
  idleSeconds: number;
}

export class ConsoleAuth {
  private readonly cookie: string;

  constructor(private readonly o: ConsoleAuthOptions) {
    this.cookie = cookieName(o.secure, SESSION_COOKIE);
  }

  get oidcEnabled(): boolean {
    return this.o.oidc !== undefined;
  }

  /**
   * The principal of a request that carries a session cookie (else undefined). A state-changing
   * request must echo the session's CSRF token, and come from this origin if it names one.
   */
  async principalOf(req: Request, res: Response, source: string | null): Promise<Principal | undefined> {
    const id = readCookie(req, this.cookie);
    if (id === undefined) return undefined;
    const session = this.o.sessions.touch(id);
    if (!session) {
      this.clearSessionCookie(res);
      throw unauthenticated('session_expired', 'the console session has ended; sign in again');
    }
    if (UNSAFE.has(req.method)) {
      const sent = req.get('x-csrf-token');
      if (sent === undefined || !sameSecret(sent, session.csrfToken)) {
        throw forbidden('csrf_token_invalid', 'this request lacks the console session\'s CSRF token (X-CSRF-Token)');
      }
    }
    res.locals.session = session;
    res.locals.sessionId = id;
    try {
      return await this.resolve(session.grant, source);
    } catch (e) {
      // The token behind the session was revoked or expired: the session ends with it.
      if (isTollgateError(e) && e.kind === 'unauthenticated') {
        this.o.sessions.close(id);
        this.clearSessionCookie(res);
      }
      throw e;
    }
  }

  private resolve(grant: SessionGrant, source: string | null): Promise<Principal> | Principal {
    switch (grant.kind) {
      case 'token':
        return this.o.service.authenticateHash(grant.secretHash, source);
      case 'person':
        return { kind: 'person', identity: grant.identity, factoryId: grant.factoryId, scopes: grant.scopes, source };
      case 'operator':
        return { kind: 'operator', source };
    }
  }

  /** Signs in with an admin API token or a `tollgate console` code; sets the session cookie. */
  async signIn(res: Response, body: { token?: string | undefined; code?: string | undefined }, source: string | null): Promise<SessionView> {
    if ((body.token === undefined) === (body.code === undefined)) {
      throw invalidInput('sign_in_source', 'give exactly one of token (an admin API token) or code (from tollgate console)');
    }
    if (body.code !== undefined) {
      await redeemConsoleSigninCode(this.o.deps, body.code);
      await recordConsoleSession(this.o.deps, { actor: 'operator', source }, 'signed_in', { via: 'code' });
      return this.open(res, { kind: 'operator' }, source);
    }
    const secret = body.token!.trim();
    let principal: Principal;
    try {
      principal = await this.o.service.authenticate(secret, source);
    } catch (e) {
      if (isTollgateError(e)) await recordConsoleSession(this.o.deps, { actor: 'anonymous', source }, 'signin_refused', { via: 'token', reason: e.code });
      throw e;
    }
    if (principal.kind !== 'token' || secretKind(secret) !== 'api') throw unauthenticated('token_invalid', 'the admin API token is invalid');
    await recordConsoleSession(this.o.deps, { actor: `token:${principal.token.id}`, source }, 'signed_in', { via: 'token', factoryId: principal.token.factoryId });
    return this.open(res, { kind: 'token', secretHash: hashSecret(secret), tokenId: principal.token.id }, source);
  }

  /** Starts an OIDC sign-in: the provider URL, with the state bound to this browser by a cookie. */
  async startOidc(res: Response): Promise<string> {
    if (!this.o.oidc) throw forbidden('oidc_not_configured', 'console sign-in with OpenID Connect is not configured (admin.console.oidc)');
    const { url, state } = await this.o.oidc.start();
    // Lax, not Strict: the provider's redirect back is a cross-site navigation that must carry it.
    res.append('Set-Cookie', serializeCookie(cookieName(this.o.secure, OIDC_COOKIE), state, { secure: this.o.secure, sameSite: 'Lax', maxAge: 600, path: this.o.secure ? '/' : OIDC_COOKIE_PATH }));
    return url;
  }

  /** Finishes an OIDC sign-in from the provider's redirect; opens the session. */
  async finishOidc(req: Request, res: Response, source: string | null): Promise<void> {
    if (!this.o.oidc) throw forbidden('oidc_not_configured', 'console sign-in with OpenID Connect is not configured (admin.console.oidc)');
    const name = cookieName(this.o.secure, OIDC_COOKIE);
    const state = readCookie(req, name);
    res.append('Set-Cookie', serializeCookie(name, '', { secure: this.o.secure, sameSite: 'Lax', maxAge: 0, path: this.o.secure ? '/' : OIDC_COOKIE_PATH }));
    const search = new URL(req.originalUrl, 'http://admin.invalid').search;
    const signIn = await this.o.oidc.finish(search, state).catch(async (e: unknown) => {
      if (isTollgateError(e)) {
        this.o.log?.warn({ code: e.code, err: e.message }, 'console sign-in through OIDC refused');
        await recordConsoleSession(this.o.deps, { actor: 'anonymous', source }, 'signin_refused', { via: 'oidc', reason: e.code });
      }
      throw e;
    });
    const factory = await this.o.deps.store.getFactoryByName(signIn.factory);
    if (!factory) throw forbidden('console_role_invalid', `the console role names factory "${signIn.factory}", which does not exist`);
    await recordConsoleSession(this.o.deps, { actor: signIn.identity, source }, 'signed_in', { via: 'oidc', factoryId: factory.id });
    this.open(res, { kind: 'person', identity: signIn.identity, factoryId: factory.id, scopes: signIn.scopes }, source);
  }

  /** Ends the session of this request. */
  async signOut(res: Response, principal: Principal): Promise<void> {
    const id = res.locals.sessionId as string | undefined;
    if (id === undefined) throw unauthenticated('session_required', 'this request has no console session');
    this.o.sessions.close(id);
    this.clearSessionCookie(res);
    const grant = (res.locals.session as Session).grant;
    const actor = grant.kind === 'person' ? grant.identity : grant.kind === 'token' ? `token:${grant.tokenId}` : 'operator';
    const factoryId = principal.kind === 'token' ? principal.token.factoryId : principal.kind === 'person' ? principal.factoryId : null;
    await recordConsoleSession(this.o.deps, { actor, source: principal.source ?? null }, 'signed_out', { via: grant.kind === 'person' ? 'oidc' : grant.kind === 'token' ? 'token' : 'code', factoryId });
  }

  /** What the console shows of its session: who, which factory, which scopes, and its CSRF token. */
  async view(res: Response, principal: Principal): Promise<SessionView> {
    const session = res.locals.session as Session | undefined;
    if (!session) throw unauthenticated('session_required', 'this request has no console session; sign in at /');
    return this.describe(session, principal);
  }

  private async describe(session: Session, principal: Principal): Promise<SessionView> {
    const who = await this.o.service.whoami(principal);
    const base = { csrfToken: session.csrfToken, expiresAt: new Date(this.o.sessions.expiresAt(session)).toISOString(), idleSeconds: Math.round(this.o.sessions.idleMs / 1000) };
    if (who.kind === 'operator') return { kind: 'operator', identity: 'operator', factory: null, scopes: [...API_TOKEN_SCOPES], ...base };
    if (who.kind === 'person') return { kind: 'person', identity: who.identity, factory: who.factory, scopes: who.scopes, ...base };
    return { kind: 'token', identity: `token:${who.token.id}`, factory: who.factory, scopes: who.token.scopes, ...base };
  }

  private async open(res: Response, grant: SessionGrant, source: string | null): Promise<SessionView> {
    const { id, session } = this.o.sessions.open(grant);
    res.locals.session = session;
    res.locals.sessionId = id;
    res.append('Set-Cookie', serializeCookie(this.cookie, id, { secure: this.o.secure, sameSite: 'Strict' }));
    return this.describe(session, await this.resolve(grant, source));
  }

  private clearSessionCookie(res: Response): void {
    res.append('Set-Cookie', serializeCookie(this.cookie, '', { secure: this.o.secure, sameSite: 'Strict', maxAge: 0 }));
  }
}
