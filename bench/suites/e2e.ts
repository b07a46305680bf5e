import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOciLayout } from '../../tools/oci-layout.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { over, roundsFigure } from '../lib/rounds.js';
import { median, round } from '../lib/stats.js';
import { startTopology } from '../lib/topology.js';

/**
 * A whole pull with skopeo through the full flow (registry challenge, credential helper, gateway
 * over mutual TLS, realm, registry verifying the JWT) against the same image pulled from a
 * registry with no auth, alternating so both see the same machine. Every Tollgate pull starts with
 * an empty helper cache, so each pays for a gateway call. Then the parts on their own: the
 * helper call, and the realm exchange.
 */

interface Timed {
  ms: number;
  stdout: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${String(code)}: ${err}${out}`));
      resolve({ ms, stdout: out });
    });
    child.stdin.end(input ?? '');
  });
}

export async function e2eSuite(o: SuiteOptions): Promise<SuiteResult> {
  const pulls = o.quick ? 5 : 30;
  const dir = mkdtempSync(join(o.dir, 'e2e-'));
  o.log('e2e: starting gateway, authsvc and two registries');
  const t = await startTopology(dir);
  try {
    const image = buildOciLayout(join(dir, 'image'), 'latest', 'hello from the benchmark\n');
    const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', 'demo', '--scope', 'containers:write', '--description', 'bench push']);
    const skopeo = (args: string[], env: NodeJS.ProcessEnv = {}) => run('skopeo', ['--command-timeout', '60s', ...args], { HOME: dir, ...env });
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${ci.username}:${ci.secret}`, `oci:${image.dir}:latest`, `docker://${t.registryHost}/demo/app:latest`]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.dir}:latest`, `docker://${t.openRegistryHost}/demo/app:latest`]);

    const deviceDir = join(dir, 'device');
    const issued = t.cliJson<{ device: { uuid: string } }>(['device', 'issue-test', 'demo', '--hours', '2', '--out', deviceDir, '--registry', t.registryHost]);
    const authfile = join(deviceDir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ credHelpers: { [t.registryHost]: 'tollgate' } }));
    let n = 0;
    const deviceEnv = (): NodeJS.ProcessEnv => {
      // A fresh cache per call: every pull and every helper call costs a gateway round trip.
      const cache = join(deviceDir, `cache-${n++}`);
      mkdirSync(cache);
      return { PATH: `${t.binDir}:${process.env.PATH ?? ''}`, TOLLGATE_DEVICE_CONFIG: join(deviceDir, 'device.json'), TOLLGATE_CACHE_DIR: cache };
    };
    const out = () => `oci:${join(dir, 'pulled', String(n++))}:x`;
    mkdirSync(join(dir, 'pulled'));

    o.log(`e2e: ${pulls} pulls through Tollgate and ${pulls} from the registry without auth, alternating`);
    // One untimed pull each first: skopeo, the registry and the services all start cold.
    await skopeo(['copy', '--authfile', authfile, '--src-tls-verify=false', `docker://${t.registryHost}/demo/app:latest`, out()], deviceEnv());
    await skopeo(['copy', '--src-tls-verify=false', `docker://${t.openRegistryHost}/demo/app:latest`, out()]);
    const tollgate: number[] = [];
    const open: number[] = [];
    for (let i = 0; i < pulls; i++) {
      tollgate.push((await skopeo(['copy', '--authfile', authfile, '--src-tls-verify=false', `docker://${t.registryHost}/demo/app:latest`, out()], deviceEnv())).ms);
      open.push((await skopeo(['copy', '--src-tls-verify=false', `docker://${t.openRegistryHost}/demo/app:latest`, out()])).ms);
    }

    o.log('e2e: the parts: helper calls and realm exchanges');
    const helper: number[] = [];
    const realm: number[] = [];
    let creds = { Username: '', Secret: '' };
    for (let i = 0; i < pulls; i++) {
      const env = deviceEnv();
      const r = await run(join(t.binDir, 'docker-credential-tollgate'), ['get'], env, `${t.registryHost}\n`);
      helper.push(r.ms);
      creds = JSON.parse(r.stdout) as typeof creds;
    }
    // The floor under any helper call: starting Node itself.
    const nodeStart: number[] = [];
    for (let i = 0; i < pulls; i++) nodeStart.push((await run(process.execPath, ['-e', '0'], {})).ms);
    const basic = 'Basic ' + Buffer.from(`${creds.Username}:${creds.Secret}`).toString('base64');
    const tokenUrl = `http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=${encodeURIComponent('repository:demo/app:pull')}`;
    for (let i = 0; i < pulls + 1; i++) {
      const t0 = performance.now();
      const res = await fetch(tokenUrl, { headers: { Authorization: basic } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`realm answered ${res.status}`);
      if (i > 0) realm.push(performance.now() - t0);
    }

    const pull = median(tollgate);
    const base = median(open);
    const helperMs = median(helper);
    const realmMs = median(realm);
    const breakdown = {
      pullMs: round(pull, 1),
      helperCallMs: round(helperMs, 1),
      ofWhichNodeStartMs: round(median(nodeStart), 1),
      realmExchangeMs: round(realmMs, 1),
      registryWithoutAuthPullMs: round(base, 1),
      restMs: round(pull - helperMs - realmMs - base, 1),
      restMeaning:
        'pull - helper - realm - unauthenticated pull: the extra round trips of an authenticated pull (401 challenge, JWT verification); medians of separate runs, so within noise it can fall below zero',
    };
    const figures: Figure[] = [
      roundsFigure({
        suite: 'e2e',
        name: 'skopeo pull, median (ceiling: registry without auth)',
        unit: 'ms',
        values: tollgate,
        references: open,
        ratio: over,
        target: 'informational',
        meets: null,
        method: { pulls, device: issued.device.uuid, tollgatePullsMs: tollgate.map((v) => round(v, 1)), openPullsMs: open.map((v) => round(v, 1)) },
      }),
      { suite: 'e2e', name: 'helper call (docker-credential-tollgate get, no cache), median', value: helperMs, unit: 'ms', ceiling: null, ratio: null, target: 'informational', met: null },
      { suite: 'e2e', name: 'Node start-up alone (node -e 0), median', value: median(nodeStart), unit: 'ms', ceiling: null, ratio: null, target: 'informational', met: null },
      { suite: 'e2e', name: 'realm exchange (GET /token, one connection each), median', value: realmMs, unit: 'ms', ceiling: null, ratio: null, target: 'informational', met: null },
    ];
    return { figures, method: { pulls, image: 'one 1-file layer (tools/oci-layout.ts)', breakdown } };
  } finally {
    await t.stop();
  }
}
