import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { TollgateError } from '../../shared/errors.js';
import { sameSecret } from '../../shared/secrets.js';
import { intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { usageError } from '../failure.js';
import { deleteSession, describe, discover, readSession, refreshSession, sessionFrom, sessionPath, writeSession } from '../login-session.js';

/**
 * `tollgate login`: single sign-on for people, as a native app (RFC 8252). The authorization code
 * grant with PKCE, the browser sent back to a one-shot listener on 127.0.0.1; the ID token it
 * yields is the registry password, the account it names the username.
 */

const DEFAULT_SCOPE = 'openid email groups offline_access';
/** `tollgate login token` renews a token that expires sooner than this. */
const RENEW_MARGIN_MS = 60_000;

interface ProviderDefaults {
  issuer?: string;
  clientId?: string;
  accountClaim: string;
}

/** The configuration's `authsvc.oidc`, when a configuration file is given; login needs none. */
function providerDefaults(ctx: Context): ProviderDefaults {
  if (ctx.configFile === null) return { accountClaim: 'email' };
  const section = ctx.config().authsvc.oidc;
  if (!section) return { accountClaim: 'email' };
  const clientId = section.clientId ?? (section.audience.length === 1 ? section.audience[0] : undefined);
  return { issuer: section.issuer, ...(clientId ? { clientId } : {}), accountClaim: section.accountClaim };
}

const page = (title: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>Tollgate</title></head><body><p>${title}</p></body></html>`;

/**
 * Listens on 127.0.0.1 for the one redirect that ends the login: resolves to its URL when its
 * `state` is the expected one, rejects on a provider error, a wrong `state` or the time-out.
 */
async function loopbackListener(port: number, expectedState: string, timeoutMs: number) {
  let settle!: { resolve: (u: URL) => void; reject: (e: Error) => void };
  const arrived = new Promise<URL>((resolve, reject) => (settle = { resolve, reject }));
  // Awaited by the caller; this keeps a rejection after an earlier failure from going unhandled.
  arrived.catch(() => undefined);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', redirectBase);
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const state = url.searchParams.get('state') ?? '';
    if (!sameSecret(state, expectedState)) {
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(page('This login attempt does not match the one Tollgate started. Run tollgate login again.'));
      settle.reject(new TollgateError('unauthenticated', 'login_state_mismatch', 'the browser came back with another login attempt (state mismatch); run tollgate login again'));
      return;
    }
    const error = url.searchParams.get('error');
    if (error !== null) {
      const description = url.searchParams.get('error_description');
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(page('The provider did not log you in. See the terminal.'));
      const text = `${error}${description ? `: ${description}` : ''}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
      settle.reject(new TollgateError('unauthenticated', 'login_denied', `the provider refused the login (${text})`));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page('Logged in to Tollgate. You can close this window.'));
    settle.resolve(url);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new TollgateError('unavailable', 'login_listener_failed', `cannot listen on 127.0.0.1:${port}: ${e.message}`)));
    server.listen(port, '127.0.0.1', resolve);
  });
  const redirectBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const timer = setTimeout(
    () => settle.reject(new TollgateError('unauthenticated', 'login_timed_out', `no answer from the browser within ${Math.round(timeoutMs / 1000)} s; run tollgate login again`)),
    timeoutMs,
  );
  const close = () => {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  };
  return { redirectUri: `${redirectBase}/callback`, arrived, close };
}

export const loginCommands: Command[] = [
  {
    name: ['login'],
    args: [],
    usage: '[--issuer <url>] [--client-id <id>] [--scope <scopes>] [--timeout <seconds>] [--port <n>]',
    summary: 'log in with your OpenID Connect provider (single sign-on), for registry clients',
    details: [
      'Prints a URL to open in a browser; after you log in there, the provider sends the browser back to a',
      'listener on 127.0.0.1 and the session (ID token, refresh token) is stored in',
      '$XDG_CONFIG_HOME/tollgate/login.json (default ~/.config/tollgate/login.json, mode 0600).',
      'The issuer and client id default to authsvc.oidc of the configuration file, if one is given.',
      'Then: tollgate login token | skopeo login -u <account> --password-stdin <registry>',
    ].join('\n'),
    options: {
      issuer: { type: 'string', value: 'url', help: "the provider's issuer URL (default: authsvc.oidc.issuer)" },
      'client-id': { type: 'string', value: 'id', help: 'the client id registered for Tollgate (default: authsvc.oidc.clientId)' },
      scope: { type: 'string', value: 'scopes', help: `space-separated scopes (default: "${DEFAULT_SCOPE}")` },
      timeout: { type: 'string', value: 'seconds', help: 'how long to wait for the browser (default: 300)' },
      port: { type: 'string', value: 'n', help: 'the loopback port to listen on (default: any free port)' },
    },
    mode: 'standalone',
    async run(ctx, input) {
      const defaults = providerDefaults(ctx);
      const issuer = stringOption(input, 'issuer') ?? defaults.issuer;
      const clientId = stringOption(input, 'client-id') ?? defaults.clientId;
      if (!issuer) throw usageError('usage_option_missing', '--issuer is required (or authsvc.oidc.issuer in the configuration file)');
      if (!clientId) throw usageError('usage_option_missing', '--client-id is required (or authsvc.oidc.clientId in the configuration file)');
      const scope = (stringOption(input, 'scope') ?? DEFAULT_SCOPE).trim().split(/\s+/).join(' ');
      if (!scope.split(' ').includes('openid')) throw usageError('scope_invalid', '--scope must include openid: the ID token is the registry password');
      const timeoutMs = (intOption(input, 'timeout', 5, 3600) ?? 300) * 1000;
      const port = intOption(input, 'port', 0, 65535) ?? 0;

      const config = await discover(issuer, clientId);
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const listener = await loopbackListener(port, state, timeoutMs);
      try {
        const url = oidc.buildAuthorizationUrl(config, {
          redirect_uri: listener.redirectUri,
          response_type: 'code',
          scope,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
          // OIDC Core 11: offline_access is honoured only with an explicit consent prompt.
          ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
        });
        ctx.io.stderr(
          [
            `Open this URL in a browser to log in to ${issuer}:`,
            '',
            `  ${url.href}`,
            '',
            `Waiting for the browser at ${listener.redirectUri} (up to ${Math.round(timeoutMs / 1000)} s)...`,
            '',
          ].join('\n'),
        );
        const callback = await listener.arrived;
        let tokens;
        try {
          tokens = await oidc.authorizationCodeGrant(config, callback, {
            pkceCodeVerifier: verifier,
            expectedState: state,
            expectedNonce: nonce,
            idTokenExpected: true,
          });
        } catch (e) {
          throw new TollgateError('unauthenticated', 'login_exchange_failed', `the provider did not exchange the code for tokens (${describe(e)})`);
        }
        const session = sessionFrom({ issuer, clientId, accountClaim: defaults.accountClaim }, tokens);
        const path = sessionPath(ctx.env);
        writeSession(path, session);
        const summary = { account: session.account, issuer, clientId, expiresAt: session.expiresAt, refreshable: session.refreshToken !== null, session: path };
        ctx.print(summary, () =>
          [
            `logged in as ${session.account} (ID token valid until ${session.expiresAt}${session.refreshToken ? ', renewed by tollgate login token' : ''})`,
            `registry clients: tollgate login token | skopeo login -u ${session.account} --password-stdin <registry>`,
          ].join('\n'),
        );
      } finally {
        listener.close();
      }
    },
  },
  {
    name: ['login', 'token'],
    args: [],
    usage: '',
    summary: 'print the ID token of the login session, renewed first if it expires within a minute',
    details: 'The token is the registry password for the account tollgate login show names; it goes to stdout only.',
    mode: 'standalone',
    async run(ctx) {
      const path = sessionPath(ctx.env);
      let session = readSession(path);
      if (Date.parse(session.expiresAt) - Date.now() < RENEW_MARGIN_MS) session = await refreshSession(path, session);
      ctx.print({ account: session.account, idToken: session.idToken, expiresAt: session.expiresAt }, () => session.idToken);
    },
  },
  {
    name: ['login', 'show'],
    args: [],
    usage: '',
    summary: 'show the login session: account, issuer, expiry (never the tokens)',
    mode: 'standalone',
    async run(ctx) {
      const path = sessionPath(ctx.env);
      const s = readSession(path);
      const expired = Date.parse(s.expiresAt) <= Date.now();
      const view = { account: s.account, issuer: s.issuer, clientId: s.clientId, expiresAt: s.expiresAt, expired, refreshable: s.refreshToken !== null, session: path };
      ctx.print(view, () =>
        [
          `account:   ${s.account}`,
          `issuer:    ${s.issuer}`,
          `client:    ${s.clientId}`,
          `expires:   ${s.expiresAt}${expired ? ' (expired)' : ''}`,
          `renewable: ${s.refreshToken !== null ? 'yes' : 'no'}`,
          `session:   ${path}`,
        ].join('\n'),
      );
    },
  },
  {
    name: ['logout'],
    args: [],
    usage: '',
    summary: 'end the login session: revoke its refresh token (best effort) and delete the session file',
    mode: 'standalone',
    async run(ctx) {
      const path = sessionPath(ctx.env);
      let session;
      try {
        session = readSession(path);
      } catch {
        session = undefined;
      }
      let revoked = false;
      if (session?.refreshToken) {
        try {
          const config = await discover(session.issuer, session.clientId);
          await oidc.tokenRevocation(config, session.refreshToken, { token_type_hint: 'refresh_token' });
          revoked = true;
        } catch {
          // The provider may not offer revocation or be unreachable; deleting the file still ends the session here.
        }
      }
      const deleted = deleteSession(path);
      ctx.print({ deleted, revoked, session: path }, () =>
        deleted ? `logged out (${path} deleted${revoked ? ', refresh token revoked' : ''})` : `no login session in ${path}`,
      );
    },
  },
];
