import { startAdmin } from '../../admin/server.js';
import { writeRegistryConfig, type WrittenRegistryConfig } from '../../authsvc/registry-config.js';
import { startAuthsvc } from '../../authsvc/server.js';
import { startGateway } from '../../gateway/server.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';
import { adminUrl, gatewayUrl, metricsListen, realmUrl, type LoadedConfig } from '../../shared/config.js';
import { assertUnlocked, lockDataDir } from '../../shared/data-dir-lock.js';
import { gatewayTls } from '../../shared/gateway-tls.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { registerExpiryGauges } from '../../shared/ops/expiry-metrics.js';
import { startMetricsListener, type RunningMetricsListener } from '../../shared/ops/metrics-listener.js';
import type { ServiceMetrics } from '../../shared/ops/metrics.js';
import type { SqlStore } from '../../shared/store/index.js';
import { openAuthority, storeLocation } from '../../shared/runtime.js';
import { describeStore } from '../../shared/store/index.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import type { Context } from '../context.js';
import { prepareDevelopment } from '../development.js';
import { fields } from '../format.js';
import { untilStopped } from '../lifecycle.js';
import { registryDir } from '../registry-files.js';
import { runUp } from '../up.js';

/**
 * The process-level part of a service: its metrics (own listener, expiry gauges, process metrics).
 * Metrics are read at scrape time from the service's registry and the store.
 */
async function serveMetrics(
  config: LoadedConfig,
  service: 'gateway' | 'authsvc',
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

/**
 * Runs one service process: takes the data directory's lock for `service`, opens the store, lets
 * `start` start the listeners (each returning its close), and stops them all on SIGTERM/SIGINT.
 * Whatever started before a failure is closed again.
 */
async function runService(
  ctx: Context,
  service: 'gateway' | 'authsvc',
  start: (config: LoadedConfig, deps: AuthorityDeps & { store: SqlStore }, log: Logger, started: (close: () => Promise<void>) => void) => Promise<void>,
): Promise<number> {
  const config = ctx.config();
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
    deps = openAuthority(config);
    // A networked store connects and migrates in the background: the services start once it has.
    await deps.store.ready();
    await start(config, deps, log, (close) => closers.push(close));
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return untilStopped(log, stop);
}

/** Starts the gateway (device mTLS) and the admin API (plain HTTP, its own listener) in this process. */
function serveGateway(ctx: Context): Promise<number> {
  return runService(ctx, 'gateway', async (config, deps, log, started) => {
    const tls = await gatewayTls(config, log, deps.keys);
    const gateway = await startGateway({ config, deps, identity: { certPem: tls.certPem, keyPem: tls.keyPem, caPem: tls.caPem }, log });
    started(() => gateway.close());
    const admin = await startAdmin({ config, deps, log: log.child({ component: 'admin' }), gatewayCa: tls.caPem, metrics: { ...gateway.metrics, service: 'admin' } });
    started(() => admin.close());
    const metrics = await serveMetrics(config, 'gateway', gateway.metrics, deps, log, tls.certPem);
    if (metrics) started(() => metrics.close());
  });
}

function serveAuthsvc(ctx: Context): Promise<number> {
  return runService(ctx, 'authsvc', async (config, deps, log, started) => {
    const authsvc = await startAuthsvc({ config, deps, log });
    started(() => authsvc.close());
    const metrics = await serveMetrics(config, 'authsvc', authsvc.metrics, deps, log);
    if (metrics) started(() => metrics.close());
  });
}

function registrySummary(registry: WrittenRegistryConfig): [string, string][] {
  return [
    ['root bundle', registry.paths.rootBundle],
    ['JWKS', registry.paths.jwks],
    ['registry 2.8 auth', registry.paths.auth28],
    ['registry 3.x auth', registry.paths.auth3],
  ];
}

export const serviceCommands: Command[] = [
  {
    name: ['up'],
    args: [],
    usage: '',
    summary: 'development all-in-one: set up, then run the gateway (with the admin API) and the realm until Ctrl-C',
    details: 'Generates a development PKI and a demo factory on first start (see tollgate init), then starts\ntollgate serve gateway and tollgate serve authsvc as child processes.',
    mode: 'local',
    async run(ctx) {
      // A second `up` on the same data directory stops here, before touching anything.
      assertUnlocked(ctx.config().dataDir, ['gateway', 'authsvc']);
      const prepared = await prepareDevelopment(ctx);
      await ctx.close(); // the children open the store themselves
      return runUp(ctx, prepared);
    },
  },
  {
    name: ['init'],
    args: [],
    usage: '',
    summary: 'create the development PKI, a token-signing key, a demo factory and the registry files (if missing)',
    mode: 'local',
    async run(ctx) {
      const { config, tls, registry } = await prepareDevelopment(ctx);
      const result = {
        database: config.store.type === 'sqlite' ? config.databasePath : describeStore(storeLocation(config)),
        pkiDir: config.pkiDir,
        gatewayCa: tls.caFile,
        registry: registry.paths,
        urls: { gateway: gatewayUrl(config), admin: adminUrl(config), realm: realmUrl(config) },
      };
      ctx.print(result, () =>
        fields([
          ['database', result.database],
          ['PKI directory', result.pkiDir],
          ['gateway CA', result.gatewayCa],
          ...registrySummary(registry),
        ]),
      );
    },
  },
  {
    name: ['serve', 'gateway'],
    args: [],
    usage: '',
    summary: 'run the device gateway (mutual TLS) and the admin API (HTTP, separate listener)',
    mode: 'local',
    run: serveGateway,
  },
  {
    name: ['serve', 'authsvc'],
    args: [],
    usage: '',
    summary: 'run the registry token realm',
    mode: 'local',
    run: serveAuthsvc,
  },
  {
    name: ['registry-config'],
    args: [],
    usage: '[--out <dir>] [--registry-path <dir>]',
    summary: 'write what a registry needs to trust the realm: root bundle, JWKS, auth.token snippets for 2.8 and 3.x',
    details: 'Run it again after adding or retiring a signing key, then restart the registry: it reads these files at start-up only.',
    options: {
      out: { type: 'string', value: 'dir', help: 'where to write (default: <pkiDir>/registry)' },
      'registry-path': { type: 'string', value: 'dir', help: 'the same directory as the registry sees it, for the snippets (default: --out)' },
    },
    mode: 'any',
    async run(ctx, input) {
      // The keys and the realm's settings from wherever the CLI works: the local store, or remotely
      // the admin API (operator token); the files are written here.
      const published = await ctx.client().registrySettings();
      const out = stringOption(input, 'out') ?? registryDir(ctx.config());
      const registryPath = stringOption(input, 'registry-path');
      const registry = await writeRegistryConfig(out, {
        realm: published.realm,
        service: published.service,
        issuer: published.issuer,
        keys: published.keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, certificatePem: k.certificate })),
        ...(registryPath !== undefined ? { directory: registryPath } : {}),
      });
      ctx.print({ paths: registry.paths, kids: registry.kids, auth28: registry.auth28Yaml, auth3: registry.auth3Yaml }, () =>
        [
          fields(registrySummary(registry)),
          '',
          published.tokenKeyHint === 'kid'
            ? '# Tokens name their key by kid (authsvc.tokenKeyHint): 2.8 finds it in the bundle, 3.x only through jwks.'
            : '# Tokens carry their certificate in x5c (authsvc.tokenKeyHint): both versions check it against the bundle.',
          '# registry 3.x (config.yml):',
          registry.auth3Yaml.trimEnd(),
          '',
          '# registry 2.8 (config.yml):',
          registry.auth28Yaml.trimEnd(),
        ].join('\n'),
      );
    },
  },
];
