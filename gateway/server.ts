import { createServer, type Server } from 'node:https';
import type { AuthorityDeps } from '../shared/authority/index.js';
import type { LoadedConfig } from '../shared/config.js';
import { closeGracefully, hardenServer, listen } from '../shared/http/server.js';
import type { Logger } from '../shared/log.js';
import { createGatewayApp } from './app.js';
import { secureContextOptions, watchTrust, type ServerIdentity } from './trust.js';

export interface RunningGateway {
  server: Server;
  port: number;
  /** Rebuilds the TLS trust from the store now (also done on its own when CAs change). */
  reloadTrust(): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  config: LoadedConfig;
  deps: AuthorityDeps;
  identity: ServerIdentity;
  log: Logger;
  /** How often to look for device-CA changes made by other processes. */
  trustPollMs?: number;
}

export async function startGateway({ config, deps, identity, log, trustPollMs = 2000 }: GatewayOptions): Promise<RunningGateway> {
  const app = createGatewayApp({ deps, log });
  const builtFrom = await deps.store.changeVersion('device_cas');
  const server = createServer(
    {
      ...(await secureContextOptions(deps.store, identity)),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    app,
  );
  hardenServer(server);
  const reloadTrust = async () => {
    server.setSecureContext(await secureContextOptions(deps.store, identity));
    log.info('device CA set changed: TLS trust reloaded');
  };
  const stopWatching = watchTrust(deps.store, builtFrom, trustPollMs, reloadTrust, (e) =>
    log.error({ err: e }, 'could not reload TLS trust'),
  );
  const port = await listen(server, config.gateway.listen.port, config.gateway.listen.host);
  log.info({ port, host: config.gateway.listen.host }, 'gateway listening (mutual TLS)');
  return {
    server,
    port,
    reloadTrust,
    async close() {
      stopWatching();
      await closeGracefully(server);
    },
  };
}
