import { createServer, type Server } from 'node:http';
import type { AuthorityDeps } from '../shared/authority/index.js';
import { packageVersion } from '../helper/version.js';
import { adminUrl, gatewayUrl, type LoadedConfig } from '../shared/config.js';
import { invalidInput } from '../shared/errors.js';
import { gatewayTls } from '../shared/gateway-tls.js';
import { closeGracefully, hardenServer, isLoopback, listen } from '../shared/http/server.js';
import type { Logger } from '../shared/log.js';
import { serviceEvents } from '../shared/ops/event-subscribers.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import { RequestLimiter } from '../shared/ops/rate-limit.js';
import { assessReadiness, storeCheck } from '../shared/ops/readiness.js';
import { sharedStateFor } from '../shared/store/shared-state.js';
import { createAdminApp } from './app.js';
import { ConsoleAuth } from './console-auth.js';
import type { ConsoleOidc } from './console-oidc.js';
import { SessionStore } from './session.js';
import { AdminService, publishedSettings } from './service.js';

export interface RunningAdmin {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export interface AdminOptions {
  config: LoadedConfig;
  deps: AuthorityDeps;
  log: Logger;
  /** PEM devices verify the gateway with; default: the configured one (or in development mode, the development CA). */
  gatewayCa?: string;
  /** The registry to count into (the gateway's, when both share a process). */
  metrics?: ServiceMetrics;
}

/**
 * Console sign-in as configured: sessions with the configured idle time, Secure cookies when the
 * console's public URL is https, and OIDC sign-in when admin.console.oidc and authsvc.oidc are set.
 */
export async function consoleAuth(config: LoadedConfig, deps: AuthorityDeps, service: AdminService, log?: Logger): Promise<ConsoleAuth> {
  const publicUrl = adminUrl(config);
  const wanted = config.admin.console.oidc;
  const provider = config.authsvc.oidc;
  if (wanted && !provider) throw invalidInput('config_invalid', 'admin.console.oidc needs authsvc.oidc: the console signs people in with the realm\'s provider');
  let oidc: ConsoleOidc | undefined;
  if (wanted && provider) {
    // openid-client and jose only where OIDC sign-in is configured.
    const [{ ConsoleOidc }, { createOidcAuthenticator }] = await Promise.all([import('./console-oidc.js'), import('../authsvc/authn/oidc.js')]);
    const clientId = wanted.clientId ?? provider.clientId ?? provider.audience[0]!;
    oidc = new ConsoleOidc({
      issuer: provider.issuer,
      clientId,
      redirectUri: `${publicUrl}/v1/session/oidc/callback`,
      // The realm's own verification, for ID tokens issued to the console's client.
      authenticator: createOidcAuthenticator({ ...provider, audience: [clientId] }, log ? { log } : {}),
      accountClaim: provider.accountClaim,
      roles: wanted.roles,
      now: deps.now,
    });
  }
  return new ConsoleAuth({
    deps,
    service,
    sessions: new SessionStore(config.admin.console.idleMinutes * 60_000, deps.now),
    secure: publicUrl.startsWith('https:'),
    ...(oidc ? { oidc } : {}),
    ...(log ? { log } : {}),
  });
}

/**
 * The admin API on its own plain-HTTP listener, never on the device mTLS port: device
 * certificates must not be a way in to administration, and the admin API must stay reachable when
 * no device CA exists yet.
 */
export async function startAdmin({ config, deps: rawDeps, log, gatewayCa, metrics }: AdminOptions): Promise<RunningAdmin> {
  const deps: AuthorityDeps = { ...rawDeps, events: serviceEvents({ log, ...(metrics ? { metrics } : {}) }) };
  const { host, port: wanted } = config.admin.listen;
  if (!isLoopback(host)) {
    // Bearer tokens cross this listener in clear text: beyond loopback it belongs behind a TLS proxy.
    log.warn({ host }, 'the admin API listens beyond loopback over plain HTTP; put it behind a TLS-terminating proxy');
  }
  const service = new AdminService(deps, publishedSettings(config));
  const app = createAdminApp({
    service,
    log,
    ...(metrics ? { metrics } : {}),
    // Everything the admin API does goes through the store.
    readiness: () => assessReadiness({ store: storeCheck(deps.store) }),
    enrollment: { gatewayCa: gatewayCa ?? (await gatewayTls(config, log, deps.keys)).caPem, gateway: gatewayUrl(config) },
    console: await consoleAuth(config, deps, service, log),
    version: packageVersion(),
    limiter: new RequestLimiter(config.limits, { now: deps.now, state: sharedStateFor(rawDeps.store).limits, scope: 'admin' }),
  });
  const server = createServer(app);
  hardenServer(server);
  const port = await listen(server, wanted, host);
  log.info({ port, host }, 'admin API listening (HTTP)');
  return {
    server,
    port,
    close: () => closeGracefully(server),
  };
}
