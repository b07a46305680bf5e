/**
 * Entry point of every server the benchmarks measure, each in a child process of its own so the
 * load generator never shares an event loop (or a core, when pinned) with the server.
 *
 *   node child.js <kind> <json spec file>
 *
 * Tells the parent its port over IPC ({ port }) once listening, and exits on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { startAuthsvc } from '../../authsvc/server.js';
import { startGateway } from '../../gateway/server.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { openAuthority, SERVICE_STORE } from '../../shared/runtime.js';
import { startBareHttps } from './bare-https.js';
import { startBareRealm } from './bare-realm.js';

export type ChildKind = 'authsvc' | 'gateway' | 'bare-realm' | 'bare-https';

export interface ChildSpec {
  configFile: string;
  tls: { certPem: string; keyPem: string; caPem: string };
  /** The CA that issued the device certificate: the ceiling's trust for client certificates. */
  deviceCaPem: string;
  token: { username: string; secret: string };
  service: string;
  issuer: string;
  /** Environment overrides of the configuration file (TOLLGATE_*), e.g. the store's synchronous setting. */
  env?: Record<string, string>;
}

async function main(): Promise<void> {
  const [kind, specFile] = process.argv.slice(2);
  if (!kind || !specFile) throw new Error('usage: child.js <kind> <spec.json>');
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ChildSpec;
  let port: number;
  let close: () => Promise<void>;
  switch (kind as ChildKind) {
    case 'authsvc': {
      const config = loadConfig({ file: spec.configFile, env: spec.env ?? {} });
      // The configured level (info, as in production): request lines are part of what a request costs.
      const log = createLogger('authsvc', config.log.level);
      const running = await startAuthsvc({ config, deps: openAuthority(config, Date.now, SERVICE_STORE), log });
      port = running.port;
      close = () => running.close();
      break;
    }
    case 'gateway': {
      const config = loadConfig({ file: spec.configFile, env: spec.env ?? {} });
      const log = createLogger('gateway', config.log.level);
      const running = await startGateway({ config, deps: openAuthority(config, Date.now, SERVICE_STORE), identity: spec.tls, log });
      port = running.port;
      close = () => running.close();
      break;
    }
    case 'bare-realm': {
      const running = await startBareRealm(spec);
      port = running.port;
      close = running.close;
      break;
    }
    case 'bare-https': {
      const running = await startBareHttps(spec.tls, spec.deviceCaPem);
      port = running.port;
      close = running.close;
      break;
    }
    default:
      throw new Error(`unknown server kind ${kind}`);
  }
  process.send?.({ port });
  const stop = () => {
    void close().finally(() => process.exit(0));
    // A graceful close waits for keep-alive connections; the benchmark does not need to.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('disconnect', stop);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
