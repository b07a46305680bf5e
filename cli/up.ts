import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminUrl, gatewayUrl, loadConfig, metricsListen, realmUrl, type Config } from '../shared/config.js';
import { assertUnlocked } from '../shared/data-dir-lock.js';
import { Context } from './context.js';
import { prepareDevelopment, type Prepared } from './development.js';
import { exitCodeOf, formatError } from './failure.js';
import { runService, SERVICES } from './serve.js';

/** This CLI's entry point, to start the realm with the same code that is running now. */
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));


function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.length > 0 && !rel.startsWith('..') ? rel : path;
}

function banner(ctx: Context, { config, tls, registry }: Prepared): string {
  const again = ctx.configFile ? ` --config ${ctx.configFile}` : '';
  return [
    'Tollgate (development) is starting:',
    `  gateway, devices (mutual TLS)  ${gatewayUrl(config)}   (devices trust it by ${shown(tls.caFile)})`,
    `  admin API                      ${adminUrl(config)}`,
    `  token realm                    ${realmUrl(config)}   (service "${config.authsvc.service}", issuer "${config.authsvc.issuer}")`,
    `  registry config                ${shown(registry.paths.auth3)} (3.x), ${shown(registry.paths.auth28)} (2.8)`,
    ...(config.metrics.enabled
      ? [`  metrics                        ${metricsUrl(config, 'gateway')} (gateway, admin), ${metricsUrl(config, 'authsvc')} (realm)`]
      : []),
    '',
    'Next, create a token for CI to push with:',
    `  tollgate token create demo --scope containers:write${again}`,
    'Ctrl-C stops both services.',
    '',
  ].join('\n');
}

/**
 * Both children read one configuration; an explicitly configured metrics port goes to the gateway
 * and the next one to the realm, so the two listeners never clash.
 */
function metricsPort(config: Config, service: (typeof SERVICES)[number]): number {
  const configured = config.metrics.listen.port;
  if (configured === undefined || configured === 0) return metricsListen(config, service).port;
  return service === 'gateway' ? configured : configured + 1;
}

function metricsUrl(config: Config, service: (typeof SERVICES)[number]): string {
  const host = config.metrics.listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${metricsPort(config, service)}/metrics`;
}

/**
 * Runs the gateway (with the admin API) in this process and the realm (`serve authsvc`) as a child
 * process, until a signal stops them: no supervisor process beside the services. Signals are passed
 * on to the realm; when the realm stops unexpectedly the gateway is stopped too, and a gateway that
 * fails stops the realm, so `up` never leaves half a system running. Resolves to the exit code.
 */
export async function runUp(ctx: Context, prepared: Prepared): Promise<number> {
  ctx.io.stdout(banner(ctx, prepared));
  // Development mode: the services use the development PKI prepared above.
  const envFor = (service: (typeof SERVICES)[number]) => ({
    ...ctx.env,
    TOLLGATE_DEVELOPMENT: 'true',
    TOLLGATE_METRICS_LISTEN_PORT: String(metricsPort(prepared.config, service)),
  });
  // The IPC channel lets the realm notice if this process dies without a chance to signal.
  const realm = spawn(process.execPath, [MAIN, 'serve', 'authsvc', ...ctx.configArgs()], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: envFor('authsvc') });
  let stopping = false;
  let failed = false;
  const realmExited = new Promise<number | null>((resolve) => {
    realm.once('error', (e) => {
      ctx.io.stderr(`tollgate: could not start authsvc: ${e.message} (spawn_failed)\n`);
      resolve(1);
    });
    realm.once('exit', (code, signal) => {
      if (!stopping) {
        ctx.io.stderr(`tollgate: authsvc stopped unexpectedly (${signal ?? `exit code ${code}`}); stopping the rest (service_exited)\n`);
        failed = true;
      }
      resolve(code);
    });
  });
  const forward = (signal: NodeJS.Signals) => {
    stopping = true;
    if (realm.exitCode === null && realm.signalCode === null) realm.kill(signal);
  };
  const onSigint = () => forward('SIGINT');
  const onSigterm = () => forward('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const config = loadConfig({ file: ctx.configFile, env: envFor('gateway') });
    const code = await runService(config, 'gateway', realmExited.then(() => 'authsvc-exited'));
    if (code !== 0) failed = true;
  } catch (e) {
    ctx.io.stderr(`tollgate: gateway could not start; stopping the rest: ${formatError(e)}`);
    failed = true;
  } finally {
    forward('SIGTERM');
  }
  const realmCode = await realmExited;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  return failed || (realmCode !== null && realmCode !== 0) ? 1 : 0;
}

/** `tollgate up`: the development setup (idempotent), then the services until stopped. */
export async function up(ctx: Context): Promise<number> {
  // A second `up` on the same data directory stops here, before touching anything.
  assertUnlocked(ctx.config().dataDir, ['gateway', 'authsvc']);
  const prepared = await prepareDevelopment(ctx);
  ctx.close(); // the services open the store themselves
  return runUp(ctx, prepared);
}

/** `up [--config FILE]` as cli/main.ts hands it over, without the command table: errors as the CLI writes them. */
export async function upProcess(configFile: string | null): Promise<number> {
  const io = { stdout: (text: string) => void process.stdout.write(text), stderr: (text: string) => void process.stderr.write(text) };
  const ctx = new Context({ io, env: process.env, json: false, configFile: configFile ?? (process.env.TOLLGATE_CONFIG || null), url: null });
  try {
    return await up(ctx);
  } catch (e) {
    io.stderr(formatError(e));
    return exitCodeOf(e);
  } finally {
    ctx.close();
  }
}
