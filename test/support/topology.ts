import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { freePort } from './ports.js';

/**
 * The deployed topology on loopback, as real processes: `tollgate serve gateway` (with the admin
 * API) and `tollgate serve authsvc` on one SQLite file, and the real registry (`docker-registry`)
 * configured with the files `tollgate registry-config` writes. Built code (dist/) is what runs.
 */

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const HELPER = join(ROOT, 'dist', 'device', 'docker-credential-tollgate.js');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Topology {
  dir: string;
  configFile: string;
  gatewayPort: number;
  adminPort: number;
  authsvcPort: number;
  /** The metrics listeners of the gateway process (gateway and admin API) and of the realm. */
  metricsPorts: { gateway: number; authsvc: number };
  registryPort: number;
  registryHost: string;
  /** Directory holding a `docker-credential-tollgate` for PATH. */
  binDir: string;
  logs: { gateway: string; authsvc: string; registry: string };
  cli(args: string[], env?: NodeJS.ProcessEnv): CliResult;
  cliJson<T>(args: string[]): T;
  stop(): Promise<void>;
}

function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolveWait, reject) => {
    const attempt = async () => {
      let ok = false;
      try {
        ok = await check();
      } catch {
        ok = false;
      }
      if (ok) return resolveWait();
      if (Date.now() > deadline) return reject(new Error(`${what} did not come up within ${timeoutMs} ms`));
      setTimeout(attempt, 100);
    };
    void attempt();
  });
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url);
  return res.status < 500;
}

function httpsOk(port: number, ca: string): Promise<boolean> {
  return new Promise((resolveOk) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost' }, (res) => {
      res.resume();
      resolveOk(res.statusCode === 200);
    });
    req.on('error', () => resolveOk(false));
    req.end();
  });
}

export interface TopologyOptions {
  testCertMaxHours?: number;
  tokenTtlSeconds?: number;
  /** Keys merged into the `authsvc` section of the configuration (users, acl, oidc, awsIdentity, hooks). */
  authsvc?: Record<string, unknown>;
  /** Keys merged into the `admin` section (console settings). */
  admin?: Record<string, unknown>;
  /** Extra environment for the services (e.g. a test CA bundle). */
  env?: NodeJS.ProcessEnv;
  /** Keys merged into the `gateway` section (e.g. estResponse). */
  gateway?: Record<string, unknown>;
  /** Start the real registry too (default true). */
  registry?: boolean;
  /** Runs on the fresh directory before anything is written into it (e.g. to mount a file system at `data/`). */
  prepare?: (dir: string) => void;
  /** Runs after the processes stopped, before the directory is removed (e.g. to unmount). */
  cleanup?: (dir: string) => void;
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  options.prepare?.(dir);
  const withRegistry = options.registry ?? true;
  const [gatewayPort, adminPort, authsvcPort, registryPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const metricsPorts = { gateway: await freePort(), authsvc: await freePort() };
  const registryHost = `127.0.0.1:${registryPort}`;
  const configFile = join(dir, 'tollgate.yml');
  const base: Record<string, unknown> = {
    dataDir: 'data',
    pkiDir: 'certs',
    // `tollgate init` generates the development PKI the services run on.
    development: true,
    log: { level: 'info' },
    gateway: {
      listen: { host: '127.0.0.1', port: gatewayPort },
      // The sota.toml of a registration names the registry the helper answers for.
      registries: [registryHost],
      ...(options.tokenTtlSeconds ? { tokenTtlSeconds: options.tokenTtlSeconds } : {}),
      ...options.gateway,
    },
    admin: { listen: { host: '127.0.0.1', port: adminPort } },
    authsvc: { listen: { host: '127.0.0.1', port: authsvcPort }, service: 'tollgate-registry', issuer: 'tollgate' },
    pki: { testCertMaxHours: options.testCertMaxHours ?? 24 },
    metrics: { listen: { host: '127.0.0.1' } },
  };
  // Extra sections (users, ACL, OIDC...) are merged into the authsvc section.
  if (options.authsvc) Object.assign(base.authsvc as Record<string, unknown>, options.authsvc);
  if (options.admin) Object.assign(base.admin as Record<string, unknown>, options.admin);
  writeFileSync(configFile, stringifyYaml(base));
  // The CLI works locally on this topology's store: no remote admin settings leak in.
  const { TOLLGATE_URL: _url, TOLLGATE_TOKEN: _token, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, ...options.env, TOLLGATE_CONFIG: configFile };

  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): CliResult => {
    const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', cwd: dir, timeout: 60_000 });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const cliJson = <T>(args: string[]): T => {
    const r = cli([...args, '--json']);
    if (r.status !== 0) throw new Error(`tollgate ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };

  const init = cli(['init']);
  if (init.status !== 0) throw new Error(`tollgate init failed: ${init.stderr}${init.stdout}`);
  const registryDir = join(dir, 'certs', 'registry');
  const rc = cli(['registry-config', '--out', registryDir]);
  if (rc.status !== 0) throw new Error(`tollgate registry-config failed: ${rc.stderr}${rc.stdout}`);

  const logs = { gateway: join(dir, 'gateway.log'), authsvc: join(dir, 'authsvc.log'), registry: join(dir, 'registry.log') };
  const children: ChildProcess[] = [];
  const startChild = (command: string, args: string[], logFile: string, childEnv: NodeJS.ProcessEnv = env) => {
    const out = createWriteStream(logFile);
    const child = spawn(command, args, { env: childEnv, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    children.push(child);
    return child;
  };
  // One configuration for both, as in a deployment; each process gets its own metrics port.
  const serviceEnv = (port: number) => ({ ...env, TOLLGATE_METRICS_LISTEN_PORT: String(port) });
  startChild(process.execPath, [CLI, 'serve', 'gateway'], logs.gateway, serviceEnv(metricsPorts.gateway));
  startChild(process.execPath, [CLI, 'serve', 'authsvc'], logs.authsvc, serviceEnv(metricsPorts.authsvc));

  const registryConfig = join(dir, 'registry.yml');
  mkdirSync(join(dir, 'registry-storage'));
  writeFileSync(
    registryConfig,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog: { disabled: true }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'registry-storage')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: 127.0.0.1:${registryPort}`,
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${authsvcPort}/token`,
      '    service: tollgate-registry',
      '    issuer: tollgate',
      `    rootcertbundle: ${join(registryDir, 'root-bundle.pem')}`,
      '',
    ].join('\n'),
  );
  if (withRegistry) startChild('docker-registry', ['serve', registryConfig], logs.registry);

  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            c.once('exit', () => done());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    options.cleanup?.(dir);
    if (!process.env.TOLLGATE_KEEP_E2E) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const gatewayCa = readFileSync(join(dir, 'certs', 'tls', 'ca.pem'), 'utf8');
    await waitFor(() => httpsOk(gatewayPort, gatewayCa), 'gateway');
    await waitFor(() => httpOk(`http://127.0.0.1:${authsvcPort}/healthz`), 'authsvc');
    await waitFor(() => httpOk(`http://127.0.0.1:${adminPort}/healthz`), 'admin API');
    if (withRegistry) await waitFor(() => httpOk(`http://${registryHost}/v2/`), 'registry');
  } catch (e) {
    await stop();
    throw e;
  }

  // What a device's PATH holds: the helper under the name clients look for.
  const binDir = join(dir, 'bin');
  mkdirSync(binDir);
  const helperPath = join(binDir, 'docker-credential-tollgate');
  writeFileSync(helperPath, `#!/bin/sh\nexec "${process.execPath}" "${HELPER}" "$@"\n`);
  chmodSync(helperPath, 0o755);

  return { dir, configFile, gatewayPort, adminPort, authsvcPort, metricsPorts, registryPort, registryHost, binDir, logs, cli, cliJson, stop };
}
