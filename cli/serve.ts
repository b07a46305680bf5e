import type { AuthorityDeps } from '../shared/authority/index.js';
import { loadConfig, metricsListen, type LoadedConfig } from '../shared/config.js';
import { lockDataDir } from '../shared/data-dir-lock.js';
import { gatewayTls } from '../shared/gateway-tls.js';
import { createLogger, type Logger } from '../shared/log.js';
import { registerExpiryGauges } from '../shared/ops/expiry-metrics.js';
import { startMetricsListener, type RunningMetricsListener } from '../shared/ops/metrics-listener.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import { openAuthority, SERVICE_STORE } from '../shared/runtime.js';
import type { SqlStore } from '../shared/store/index.js';
import { exitCodeOf, formatError } from './failure.js';
import { untilStopped } from './lifecycle.js';

/**
 * The service processes: `tollgate serve gateway` (the gateway and the admin API) and `tollgate
 * serve authsvc` (the realm). A service process loads this module and the service's own code, not
 * the command table (cli/main.ts sends a plain `serve <service>` here directly), so it carries no
 * code it never runs.
 */

export const SERVICES = ['gateway', 'authsvc'] as const;
export type Service = (typeof SERVICES)[number];

/**
 * The process-level part of a service: its metrics (own listener, expiry gauges, process metrics).
 * Metrics are read at scrape time from the service's registry and the store.
 */
async function serveMetrics(
  config: LoadedConfig,
  service: Service,
  metrics: ServiceMetrics,
  deps: AuthorityDeps,
  log: Logger,
  gatewayCertificatePem?: string,
): Promise<RunningMetricsListener | null> {
  if (!config.metrics.enabled) return null;
  registerExpiryGauges(metrics.registry, {
    store: deps.store,
    withinDays: config.metrics.expiringWithinDays,
    now: deps.now,
    ...(gatewayCertificatePem !== undefined ? { gatewayCertificatePem } : {}),
  });
  return startMetricsListener({ ...metricsListen(config, service), registries: [metrics.registry], log: log.child({ component: 'metrics' }) });
}

type Started = (close: () => Promise<void>) => void;
type Starter = (config: LoadedConfig, deps: AuthorityDeps & { store: SqlStore }, log: Logger, started: Started) => Promise<void>;

/** Starts the gateway (device mTLS) and the admin API (plain HTTP, its own listener) in this process. */
const startGatewayProcess: Starter = async (config, deps, log, started) => {
  // Each service's code is loaded by the process that runs it, and only there.
  const [{ startGateway }, { startAdmin }] = await Promise.all([import('../gateway/server.js'), import('../admin/server.js')]);
  const tls = await gatewayTls(config, log, deps.keys);
  const gateway = await startGateway({ config, deps, identity: { certPem: tls.certPem, keyPem: tls.keyPem, caPem: tls.caPem }, log });
  started(() => gateway.close());
  const admin = await startAdmin({ config, deps, log: log.child({ component: 'admin' }), gatewayCa: tls.caPem, metrics: { ...gateway.metrics, service: 'admin' } });
  started(() => admin.close());
  const metrics = await serveMetrics(config, 'gateway', gateway.metrics, deps, log, tls.certPem);
  if (metrics) started(() => metrics.close());
};

const startAuthsvcProcess: Starter = async (config, deps, log, started) => {
  const { startAuthsvc } = await import('../authsvc/server.js');
  const authsvc = await startAuthsvc({ config, deps, log });
  started(() => authsvc.close());
  const metrics = await serveMetrics(config, 'authsvc', authsvc.metrics, deps, log);
  if (metrics) started(() => metrics.close());
};

/**
 * Runs one service process: takes the data directory's lock for `service`, opens the store, starts
 * the listeners, and stops them all on SIGTERM/SIGINT (or when `stopWhen` resolves). Whatever started before a failure is closed
 * again. Resolves to the exit code once stopped.
 */
export async function runService(config: LoadedConfig, service: Service, stopWhen?: Promise<string>): Promise<number> {
  const log = createLogger(service, config.log.level);
  const lock = lockDataDir(config.dataDir, service);
  const closers: (() => Promise<void>)[] = [];
  let deps: (AuthorityDeps & { store: SqlStore }) | undefined;
  const stop = async () => {
    await Promise.all(closers.map((close) => close()));
    await deps?.store.close();
    lock.release();
  };
  try {
    deps = openAuthority(config, Date.now, SERVICE_STORE);
    // A networked store connects and migrates in the background: the services start once it has.
    await deps.store.ready();
    await (service === 'gateway' ? startGatewayProcess : startAuthsvcProcess)(config, deps, log, (close) => closers.push(close));
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return untilStopped(log, stop, stopWhen);
}

/** `serve <service> [--config FILE]` as cli/main.ts hands it over: errors as the CLI writes them. */
export async function serveProcess(service: Service, configFile: string | null): Promise<number> {
  try {
    return await runService(loadConfig({ file: configFile ?? (process.env.TOLLGATE_CONFIG || null), env: process.env }), service);
  } catch (e) {
    process.stderr.write(formatError(e));
    return exitCodeOf(e);
  }
}
