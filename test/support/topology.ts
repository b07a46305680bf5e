import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { freePort } from './ports.js';

/**
 * The deployed topology on loopback, as real processes: `tollgate serve gateway` (with the admin
 * API) and `tollgate serve authsvc` on one store (a SQLite file, or a PostgreSQL database with keys
 * sealed in it), optionally several instances of each, and the real registry (`docker-registry`)
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

/** One running Tollgate service process. */
export interface Instance {
  service: 'gateway' | 'authsvc';
  /** The gateway's or the realm's port. */
  port: number;
  /** The gateway's admin API port. */
  adminPort?: number;
  log: string;
  child: ChildProcess;
}

export interface Topology {
  dir: string;
  configFile: string;
  /** The first instance of each service. */
  gatewayPort: number;
  adminPort: number;
  authsvcPort: number;
  /** The metrics listeners of the first gateway process (gateway and admin API) and of the first realm. */
  metricsPorts: { gateway: number; authsvc: number };
  /** Every instance, gateways first. */
  instances: Instance[];
  store: 'sqlite' | 'postgres';
  registryPort: number;
  registryHost: string;
  /** Directory holding a `docker-credential-tollgate` for PATH. */
  binDir: string;
  logs: { gateway: string; authsvc: string; registry: string };
  cli(args: string[], env?: NodeJS.ProcessEnv): CliResult;
  cliJson<T>(args: string[], env?: NodeJS.ProcessEnv): T;
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
  /** A PostgreSQL database URL: the store (keys sealed in it) instead of a SQLite file. */
  postgresUrl?: string;
  /** Instances of each service (default 1). */
  replicas?: number;
  /** Keys merged into the top level of the configuration (e.g. limits, maintenance). */
  config?: Record<string, unknown>;
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  options.prepare?.(dir);
  const withRegistry = options.registry ?? true;
  const replicas = options.replicas ?? 1;
  const gatewayPorts: number[] = [];
  const adminPorts: number[] = [];
  const authsvcPorts: number[] = [];
  const gatewayMetricsPorts: number[] = [];
  const authsvcMetricsPorts: number[] = [];
  for (let i = 0; i < replicas; i++) {
    gatewayPorts.push(await freePort());
    adminPorts.push(await freePort());
    authsvcPorts.push(await freePort());
    gatewayMetricsPorts.push(await freePort());
    authsvcMetricsPorts.push(await freePort());
  }
  const [gatewayPort, adminPort, authsvcPort] = [gatewayPorts[0]!, adminPorts[0]!, authsvcPorts[0]!];
  const metricsPorts = { gateway: gatewayMetricsPorts[0]!, authsvc: authsvcMetricsPorts[0]! };
  const registryPort = await freePort();
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
    ...options.config,
    ...(options.postgresUrl ? { store: { type: 'postgres', url: options.postgresUrl, keyEncryptionKeyFile: 'secrets/kek' } } : {}),
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
  const cliJson = <T>(args: string[], extraEnv: NodeJS.ProcessEnv = {}): T => {
    const r = cli([...args, '--json'], extraEnv);
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
  const startChild = (command: string, args: string[], logFile: string, extraEnv: NodeJS.ProcessEnv = {}) => {
    const out = createWriteStream(logFile);
    const child = spawn(command, args, { env: { ...env, ...extraEnv }, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    children.push(child);
    return child;
  };
  // One configuration for all, as in a deployment; each process gets its own ports, and each
  // instance after the first its own data directory (one instance per service and data directory).
  const instances: Instance[] = [];
  const dataDir = (i: number) => (i === 0 ? {} : { TOLLGATE_DATA_DIR: join(dir, `data-${i + 1}`) });
  for (let i = 0; i < replicas; i++) {
    const log = i === 0 ? logs.gateway : join(dir, `gateway-${i + 1}.log`);
    const child = startChild(process.execPath, [CLI, 'serve', 'gateway'], log, {
      TOLLGATE_GATEWAY_LISTEN_PORT: String(gatewayPorts[i]),
      TOLLGATE_ADMIN_LISTEN_PORT: String(adminPorts[i]),
      TOLLGATE_METRICS_LISTEN_PORT: String(gatewayMetricsPorts[i]),
      ...dataDir(i),
    });
    instances.push({ service: 'gateway', port: gatewayPorts[i]!, adminPort: adminPorts[i]!, log, child });
  }
  for (let i = 0; i < replicas; i++) {
    const log = i === 0 ? logs.authsvc : join(dir, `authsvc-${i + 1}.log`);
    const child = startChild(process.execPath, [CLI, 'serve', 'authsvc'], log, {
      TOLLGATE_AUTHSVC_LISTEN_PORT: String(authsvcPorts[i]),
      TOLLGATE_METRICS_LISTEN_PORT: String(authsvcMetricsPorts[i]),
      ...dataDir(i),
    });
    instances.push({ service: 'authsvc', port: authsvcPorts[i]!, log, child });
  }

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
    for (const i of instances) {
      if (i.service === 'gateway') {
        await waitFor(() => httpsOk(i.port, gatewayCa), `gateway :${i.port}`);
        await waitFor(() => httpOk(`http://127.0.0.1:${i.adminPort}/healthz`), `admin API :${i.adminPort}`);
      } else {
        await waitFor(() => httpOk(`http://127.0.0.1:${i.port}/readyz`), `authsvc :${i.port}`);
      }
    }
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

  return {
    dir,
    configFile,
    gatewayPort,
    adminPort,
    authsvcPort,
    metricsPorts,
    instances,
    store: options.postgresUrl ? 'postgres' : 'sqlite',
    registryPort,
    registryHost,
    binDir,
    logs,
    cli,
    cliJson,
    stop,
  };
}
