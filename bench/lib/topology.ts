import { freePort } from '../../tools/free-port.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { stopProcess, track } from './proc.js';

/**
 * The deployed topology on loopback as real processes, for the end-to-end pull: `tollgate serve
 * gateway` and `tollgate serve authsvc` on one store, a `docker-registry` with token auth from
 * `tollgate registry-config`, and a second `docker-registry` with no auth as the baseline.
 * (The test suites have their own copy; the build that produces dist/bench does not include test/.)
 */

export const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const HELPER = join(ROOT, 'dist', 'device', 'docker-credential-tollgate.js');

export interface BenchTopology {
  dir: string;
  gatewayPort: number;
  authsvcPort: number;
  registryHost: string;
  openRegistryHost: string;
  binDir: string;
  cli(args: string[]): { status: number; stdout: string; stderr: string };
  cliJson<T>(args: string[]): T;
  stop(): Promise<void>;
}

export { freePort };

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function httpsOk(port: number, ca: string): Promise<boolean> {
  return new Promise((ok) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost' }, (res) => {
      res.resume();
      ok(res.statusCode === 200);
    });
    req.on('error', () => ok(false));
    req.end();
  });
}

const httpOk = async (url: string) => (await fetch(url)).status < 500;

export async function startTopology(dir: string): Promise<BenchTopology> {
  const [gatewayPort, adminPort, authsvcPort, registryPort, openPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const registryHost = `127.0.0.1:${registryPort}`;
  const openRegistryHost = `127.0.0.1:${openPort}`;
  const configFile = join(dir, 'tollgate.yml');
  writeFileSync(
    configFile,
    [
      'dataDir: data',
      'pkiDir: certs',
      // `tollgate init` generates the development PKI the services run on.
      'development: true',
      'log: { level: warn }',
      `gateway: { listen: { host: 127.0.0.1, port: ${gatewayPort} } }`,
      `admin: { listen: { host: 127.0.0.1, port: ${adminPort} } }`,
      `authsvc: { listen: { host: 127.0.0.1, port: ${authsvcPort} }, service: tollgate-registry, issuer: tollgate }`,
      '',
    ].join('\n'),
  );
  const { TOLLGATE_URL: _url, TOLLGATE_TOKEN: _token, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, TOLLGATE_CONFIG: configFile };
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', cwd: dir, timeout: 60_000 });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const cliJson = <T>(args: string[]): T => {
    const r = cli([...args, '--json']);
    if (r.status !== 0) throw new Error(`tollgate ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };
  for (const args of [['init'], ['registry-config', '--out', join(dir, 'certs', 'registry')]]) {
    const r = cli(args);
    if (r.status !== 0) throw new Error(`tollgate ${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  }

  const children: ChildProcess[] = [];
  const startChild = (command: string, args: string[], logFile: string) => {
    const out = createWriteStream(join(dir, logFile));
    const child = track(spawn(command, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    children.push(child);
  };
  startChild(process.execPath, [CLI, 'serve', 'gateway'], 'gateway.log');
  startChild(process.execPath, [CLI, 'serve', 'authsvc'], 'authsvc.log');
  const registryConfig = (port: number, storage: string, auth: string[]) => {
    mkdirSync(join(dir, storage));
    const file = join(dir, `${storage}.yml`);
    writeFileSync(
      file,
      [
        'version: 0.1',
        'log: { level: warn, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${join(dir, storage)} } }`,
        `http: { addr: 127.0.0.1:${port} }`,
        ...auth,
        '',
      ].join('\n'),
    );
    return file;
  };
  const tokenAuth = [
    'auth:',
    '  token:',
    `    realm: http://127.0.0.1:${authsvcPort}/token`,
    '    service: tollgate-registry',
    '    issuer: tollgate',
    `    rootcertbundle: ${join(dir, 'certs', 'registry', 'root-bundle.pem')}`,
  ];
  startChild('docker-registry', ['serve', registryConfig(registryPort, 'registry', tokenAuth)], 'registry.log');
  startChild('docker-registry', ['serve', registryConfig(openPort, 'open-registry', [])], 'open-registry.log');
  const stop = async () => {
    await Promise.all(children.map((c) => stopProcess(c)));
  };
  try {
    const ca = readFileSync(join(dir, 'certs', 'tls', 'ca.pem'), 'utf8');
    await waitFor(() => httpsOk(gatewayPort, ca), 'gateway');
    await waitFor(() => httpOk(`http://127.0.0.1:${authsvcPort}/healthz`), 'authsvc');
    await waitFor(() => httpOk(`http://${registryHost}/v2/`), 'registry');
    await waitFor(() => httpOk(`http://${openRegistryHost}/v2/`), 'registry without auth');
  } catch (e) {
    await stop();
    throw e;
  }
  const binDir = join(dir, 'bin');
  mkdirSync(binDir);
  const helper = join(binDir, 'docker-credential-tollgate');
  writeFileSync(helper, `#!/bin/sh\nexec "${process.execPath}" "${HELPER}" "$@"\n`);
  chmodSync(helper, 0o755);
  return { dir, gatewayPort, authsvcPort, registryHost, openRegistryHost, binDir, cli, cliJson, stop };
}
