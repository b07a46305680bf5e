import { relative } from 'node:path';
import { adminUrl, gatewayUrl, loadConfig, metricsListen, realmUrl, type Config } from '../shared/config.js';
import { assertUnlocked } from '../shared/data-dir-lock.js';
import { Context } from './context.js';
import { prepareDevelopment, type Prepared } from './development.js';
import { exitCodeOf, formatError } from './failure.js';
import { runService, SERVICES, type Service } from './serve.js';

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
 * Both services read one configuration; an explicitly configured metrics port goes to the gateway
 * and the next one to the realm, so the two listeners never clash.
 */
function metricsPort(config: Config, service: Service): number {
  const configured = config.metrics.listen.port;
  if (configured === undefined || configured === 0) return metricsListen(config, service).port;
  return service === 'gateway' ? configured : configured + 1;
}

function metricsUrl(config: Config, service: Service): string {
  const host = config.metrics.listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${metricsPort(config, service)}/metrics`;
}

/**
 * Runs the gateway (with the admin API) and the realm in this one process, until a signal stops
 * them: no supervisor and no second Node process, which for a development setup would only add
 * start-up time and memory (bench/, suite services). Each service keeps its own configuration
 * (its metrics port), logger, store connection and data-directory lock, as `serve` gives it. When
 * one fails to start or stops, the other is stopped too, so `up` never leaves half a system
 * running. Resolves to the exit code.
 */
export async function runUp(ctx: Context, prepared: Prepared): Promise<number> {
  ctx.io.stdout(banner(ctx, prepared));
  // Development mode: the services use the development PKI prepared above.
  const configFor = (service: Service) =>
    loadConfig({
      file: ctx.configFile,
      env: { ...ctx.env, TOLLGATE_DEVELOPMENT: 'true', TOLLGATE_METRICS_LISTEN_PORT: String(metricsPort(prepared.config, service)) },
    });
  let stopAll: (why: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stopAll = resolve));
  const run = async (service: Service): Promise<number> => {
    try {
      return await runService(configFor(service), service, stopped);
    } catch (e) {
      ctx.io.stderr(formatError(e));
      ctx.io.stderr(`tollgate: ${service} did not start; stopping the rest (service_failed)\n`);
      return 1;
    } finally {
      stopAll(`${service}-stopped`);
    }
  };
  const codes = await Promise.all(SERVICES.map(run));
  return codes.every((code) => code === 0) ? 0 : 1;
}

/** `tollgate up`: the development setup (idempotent), then the services until stopped. */
export async function up(ctx: Context): Promise<number> {
  // A second `up` on the same data directory stops here, before touching anything.
  assertUnlocked(ctx.config().dataDir, ['gateway', 'authsvc']);
  const prepared = await prepareDevelopment(ctx);
  await ctx.close(); // the services open the store themselves
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
    await ctx.close();
  }
}
