import { createServer, type Server } from 'node:https';
import type { AuthorityDeps } from '../shared/authority/index.js';
import { gatewayUrl, type LoadedConfig } from '../shared/config.js';
import { closeGracefully, hardenServer, listen } from '../shared/http/server.js';
import type { Logger } from '../shared/log.js';
import { serviceEvents } from '../shared/ops/event-subscribers.js';
import { createMetrics, type ServiceMetrics } from '../shared/ops/metrics.js';
import { scheduleMaintenance } from '../shared/ops/purge.js';
import { RequestLimiter } from '../shared/ops/rate-limit.js';
import { assessReadiness, certificateCheck, storeCheck } from '../shared/ops/readiness.js';
import { sharedStateFor, type SharedState } from '../shared/store/shared-state.js';
import { createGatewayHandler } from './app.js';
import { secureContextOptions, type ServerIdentity } from './trust.js';

export interface RunningGateway {
  server: Server;
  port: number;
  metrics: ServiceMetrics;
  close(): Promise<void>;
}

export interface GatewayOptions {
  config: LoadedConfig;
  deps: AuthorityDeps;
  identity: ServerIdentity;
  log: Logger;
  /** Limit counters (default: in the database on PostgreSQL, else in memory). */
  shared?: SharedState;
}

export async function startGateway({ config, deps: rawDeps, identity, log, shared = sharedStateFor(rawDeps.store) }: GatewayOptions): Promise<RunningGateway> {
  const metrics = createMetrics('gateway', {
    countDevicesByState: () => rawDeps.store.countDevicesByState(),
    activeSigningKey: async () => (await rawDeps.store.listSigningKeys()).find((k) => k.status === 'active') ?? null,
  });
  const deps: AuthorityDeps = { ...rawDeps, events: serviceEvents({ log, metrics }) };
  const limiter = new RequestLimiter(config.limits, { now: deps.now, state: shared.limits, scope: 'gateway' });
  // Ready when devices can be answered: a store that takes writes, and a server certificate in date.
  const readiness = () =>
    assessReadiness({ store: storeCheck(deps.store), serverCertificate: certificateCheck(() => identity.certPem, deps.now) });
  const handler = createGatewayHandler({
    deps,
    log,
    metrics,
    limiter,
    readiness,
    estResponse: config.gateway.estResponse,
    // Registration answers carry the gateway's CA as the device's root.crt: served only when known.
    ...(identity.caPem !== undefined
      ? { registration: { gatewayUrl: gatewayUrl(config), rootCaPem: identity.caPem, registries: config.gateway.registries } }
      : {}),
  });
  const server = createServer(
    {
      ...secureContextOptions(identity),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    handler,
  );
  hardenServer(server);
  // Handshakes that fail before any request (no HTTP answer possible) still show in the metrics.
  server.on('tlsClientError', (e: Error & { code?: string }) => {
    metrics.tlsClientCertFailures.inc({ reason: `handshake_${(e.code ?? 'unknown').toLowerCase()}` });
  });
  const stopMaintenance = scheduleMaintenance({ config, store: rawDeps.store, shared, now: deps.now, log, service: 'gateway' });
  let port: number;
  try {
    port = await listen(server, config.gateway.listen.port, config.gateway.listen.host);
  } catch (e) {
    stopMaintenance();
    throw e;
  }
  log.info({ port, host: config.gateway.listen.host }, 'gateway listening (mutual TLS)');
  return {
    server,
    port,
    metrics,
    async close() {
      stopMaintenance();
      await closeGracefully(server);
    },
  };
}
