import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFixture } from '../lib/fixture.js';
import { LOAD_CPU, pinned, startServer, track } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { over, roundsFigure } from '../lib/rounds.js';
import { round } from '../lib/stats.js';
import { ROOT } from '../lib/topology.js';
import { childSpec } from './realm.js';

/**
 * The device side: `docker-credential-tollgate get` as a container client runs it, once per image
 * of a pull. With a warm cache (a token fetched earlier and still fresh) it makes no gateway call,
 * so what it costs is start-up and its own work, measured against Node's own start-up (`node -e
 * 0`), alternately, pinned to the same core. Then, informational, a cold `get` (empty cache: one
 * mutual-TLS call to a gateway in a child process on the other core).
 */

/** Goal: a warm `get` within this multiple of `node -e 0`. */
export const DEVICE_TARGET = 1.5;

/** The helper as the package installs it (package.json bin). */
function helperEntry(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin['docker-credential-tollgate'];
  if (!bin) throw new Error('package.json names no docker-credential-tollgate');
  return join(ROOT, bin);
}

function timed(args: string[], env: NodeJS.ProcessEnv, input: string): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = pinned(LOAD_CPU, process.execPath, args);
    const t0 = performance.now();
    const child = track(spawn(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited ${String(code)}: ${err}${out}`));
      resolve({ ms, stdout: out });
    });
    child.stdin?.end(input);
  });
}

/** Device tokens the gateway has minted so far: one per /hub-creds/ call that reached it. */
function minted(databasePath: string): number {
  const db = new Database(databasePath, { readonly: true });
  try {
    return (db.prepare("SELECT COUNT(*) AS n FROM api_tokens WHERE kind = 'device'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

export async function deviceSuite(o: SuiteOptions): Promise<SuiteResult> {
  const rounds = o.quick ? 10 : 40;
  const f = await createFixture();
  const gateway = await startServer('gateway', childSpec(f), f.dir);
  try {
    const deviceDir = join(f.dir, 'device');
    mkdirSync(deviceDir);
    writeFileSync(join(deviceDir, 'device.pem'), f.device.certPem);
    writeFileSync(join(deviceDir, 'device.key'), f.device.keyPem, { mode: 0o600 });
    writeFileSync(join(deviceDir, 'gateway-ca.pem'), f.tls.caPem);
    const registry = 'registry.bench.test:5000';
    writeFileSync(
      join(deviceDir, 'device.json'),
      JSON.stringify({ gateway: `https://127.0.0.1:${gateway.port}`, certificate: 'device.pem', privateKey: 'device.key', caBundle: 'gateway-ca.pem', registries: [registry] }),
    );
    const cacheDir = join(f.dir, 'cache');
    const { TOLLGATE_HELPER_DEBUG: _debug, ...inherited } = process.env;
    const env: NodeJS.ProcessEnv = { ...inherited, TOLLGATE_DEVICE_CONFIG: join(deviceDir, 'device.json'), TOLLGATE_CACHE_DIR: cacheDir };
    const helper = helperEntry();
    const get = () => timed([helper, 'get'], env, `${registry}\n`);

    // Cold: every call with an empty cache, so each asks the gateway.
    const cold: number[] = [];
    for (let i = 0; i < Math.ceil(rounds / 4); i++) {
      rmSync(cacheDir, { recursive: true, force: true });
      cold.push((await get()).ms);
    }
    // Warm: the cache holds a fresh token; no call may reach the gateway.
    const primed = JSON.parse((await get()).stdout) as { Username?: string };
    if (!primed.Username) throw new Error('the helper answered no credentials');
    const callsBefore = minted(f.databasePath);
    const warm: number[] = [];
    const node: number[] = [];
    o.log(`device: ${rounds} warm helper calls and ${rounds} of node -e 0, alternating, on core ${LOAD_CPU}`);
    for (let r = 0; r < rounds; r++) {
      const answer = await get();
      if ((JSON.parse(answer.stdout) as { Username?: string }).Username !== primed.Username) throw new Error('a warm get answered other credentials');
      warm.push(answer.ms);
      node.push((await timed(['-e', '0'], env, '')).ms);
    }
    const callsDuring = minted(f.databasePath) - callsBefore;
    if (callsDuring !== 0) throw new Error(`warm helper calls reached the gateway ${callsDuring} times`);

    const figures: Figure[] = [
      roundsFigure({
        suite: 'device',
        name: 'credential helper `get`, warm cache (ceiling: node -e 0)',
        unit: 'ms',
        values: warm,
        references: node,
        ratio: over,
        target: `<= ${DEVICE_TARGET}x ceiling`,
        meets: (r) => r <= DEVICE_TARGET,
        method: { helper: helper.slice(ROOT.length + 1), warmMs: warm.map((v) => round(v, 1)), nodeMs: node.map((v) => round(v, 1)), gatewayCallsDuringWarmCalls: callsDuring },
      }),
      roundsFigure({
        suite: 'device',
        name: 'credential helper `get`, empty cache: one gateway call (ceiling: node -e 0)',
        unit: 'ms',
        values: cold,
        references: node.slice(0, cold.length),
        ratio: over,
        target: 'informational',
        meets: null,
        method: { coldMs: cold.map((v) => round(v, 1)) },
      }),
    ];
    return { figures, method: { rounds, pinnedTo: `core ${LOAD_CPU} (helper and node -e 0 alike); gateway on core 0`, helper: helper.slice(ROOT.length + 1) } };
  } finally {
    await gateway.stop();
    f.cleanup();
  }
}
