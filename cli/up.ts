import { spawn, type ChildProcess } from 'node:child_process';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminUrl, gatewayUrl, metricsListen, realmUrl, type Config } from '../shared/config.js';
import type { Prepared } from './development.js';
import type { Context } from './context.js';

/** This CLI's entry point, to start the services with the same code that is running now. */
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

const SERVICES = ['gateway', 'authsvc'] as const;

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
 * Runs `serve gateway` and `serve authsvc` as two child processes until they exit: signals are
 * passed on, and when one child stops unexpectedly the other is stopped too, so `up` never leaves
 * half a system running. Resolves to the exit code.
 */
export function runUp(ctx: Context, prepared: Prepared): Promise<number> {
  ctx.io.stdout(banner(ctx, prepared));
  return new Promise((resolve) => {
    const children = new Map<string, ChildProcess>();
    let stopping = false;
    let exitCode = 0;

    const stopAll = (signal: NodeJS.Signals) => {
      for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      stopping = true;
      stopAll(signal);
    };
    const onSigint = () => onSignal('SIGINT');
    const onSigterm = () => onSignal('SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);

    for (const service of SERVICES) {
      // The IPC channel lets each child notice if this process dies without a chance to signal.
      // Development mode: the services use the development PKI prepared above.
      const child = spawn(process.execPath, [MAIN, 'serve', service, ...ctx.configArgs()], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...ctx.env, TOLLGATE_DEVELOPMENT: 'true', TOLLGATE_METRICS_LISTEN_PORT: String(metricsPort(prepared.config, service)) },
      });
      children.set(service, child);
      child.on('error', (e) => {
        ctx.io.stderr(`tollgate: could not start ${service}: ${e.message} (spawn_failed)\n`);
      });
      child.on('exit', (code, signal) => {
        children.delete(service);
        if (!stopping) {
          ctx.io.stderr(`tollgate: ${service} stopped unexpectedly (${signal ?? `exit code ${code}`}); stopping the rest (service_exited)\n`);
          stopping = true;
          exitCode = 1;
          stopAll('SIGTERM');
        } else if (code !== null && code !== 0) {
          exitCode = 1;
        }
        if (children.size === 0) {
          process.off('SIGINT', onSigint);
          process.off('SIGTERM', onSigterm);
          resolve(exitCode);
        }
      });
    }
  });
}
