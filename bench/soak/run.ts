/**
 * Soak: a bounded, mixed, steady load on the deployed processes for several minutes, watching
 * that nothing leaks and nothing unexpected is answered.
 *
 *   node dist/bench/soak/run.js [--seconds N]      (default 300)
 *
 * `tollgate serve gateway` (device listener + admin API) and `tollgate serve authsvc` run as two
 * child processes on one SQLite store, seeded by the bench fixture, pinned to the server core; the
 * load runs in this process on the load core. Every 5 s the RSS and open file descriptors of each
 * child and the request and error counts are sampled. Verdict: no unexpected answer or network
 * error, RSS flat and descriptors flat between the end of the warm-up (first 20%) and the end.
 * Writes bench/results/soak.json and soak.md; exits 1 when a check fails.
 */
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { parse, stringify } from 'yaml';
import { createApiToken } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import { BENCH_FACTORY, createFixture, type Fixture } from '../lib/fixture.js';
import { LOAD_CPU, SERVER_CPU, pinned, rssOf, sleep, stopProcess, track } from '../lib/proc.js';
import { ROOT, freePort } from '../lib/topology.js';
import { count, errors, firstErrors, judge, markdown, requests, sum, table, type Sample } from './tally.js';

const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const RESULTS = join(ROOT, 'bench', 'results');
const SAMPLE_MS = 5000;
const FLEET_SIZE = 4;
const SCOPE = `repository:${BENCH_FACTORY}/app:pull`;
const MIB = 1048576;

// ---- arguments ------------------------------------------------------------------------------

function secondsArg(argv: string[]): number {
  const i = argv.indexOf('--seconds');
  if (i === -1) return 300;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 10 || n > 86_400) throw new Error('--seconds takes a whole number between 10 and 86400');
  return n;
}

// ---- clients --------------------------------------------------------------------------------

interface Device {
  uuid: string;
  context: SecureContext;
  /** Keep-alive connections of this device (one agent per device: a connection carries one certificate). */
  keepAlive: Agent;
  /** The latest /hub-creds/ token of this device. */
  token: { username: string; secret: string } | null;
}

/**
 * A kept-alive connection left idle this long is closed by the client, before the services close
 * it at their keep-alive timeout (5 s, announced as `Keep-Alive: timeout=5`). Node's agent honours
 * that announcement only when it has a timeout of its own; without one, a request sent on an idle
 * connection just as the server closes it fails with "socket hang up" (HTTP/1.1's keep-alive race,
 * seen once in 70,000 requests here: the less used of a device's two connections idles past 5 s).
 */
const IDLE_SOCKET_MS = 4000;

// New connections without session resumption: each is a full mutual-TLS handshake, as a
// credential-helper call is.
const fresh = new Agent({ keepAlive: false, maxCachedSessions: 0 });

function device(uuid: string, certPem: string, caPem: string, keyPem: string, gatewayCa: string): Device {
  // Built once per device: building a context per request would make the client the bottleneck.
  const context = createSecureContext({ ca: gatewayCa, cert: certPem + caPem, key: keyPem });
  return { uuid, context, keepAlive: new Agent({ keepAlive: true, maxSockets: 2, maxCachedSessions: 0, timeout: IDLE_SOCKET_MS }), token: null };
}

function hubCreds(port: number, d: Device, agent: Agent): Promise<{ status: number; body: string }> {
  // https.RequestOptions does not list secureContext although tls.connect takes it; a typed
  // variable rather than a literal lets it through.
  const options: RequestOptions & { secureContext: SecureContext } = {
    host: '127.0.0.1',
    port,
    path: '/hub-creds/',
    servername: 'localhost',
    secureContext: d.context,
    agent,
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

async function http(url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: await res.text() };
}

const basic = (u: string, s: string) => `Basic ${Buffer.from(`${u}:${s}`).toString('base64')}`;
const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

// ---- processes ------------------------------------------------------------------------------

interface Service {
  name: 'gateway' | 'authsvc';
  child: ChildProcess;
  pid: number;
}

function fdsOf(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within 30 s`);
    await sleep(100);
  }
}

function serve(name: Service['name'], f: Fixture): Service {
  const [cmd, args] = pinned(SERVER_CPU, process.execPath, [CLI, 'serve', name]);
  const { TOLLGATE_URL: _url, TOLLGATE_TOKEN: _token, ...inherited } = process.env;
  const child = track(spawn(cmd, args, { env: { ...inherited, TOLLGATE_CONFIG: f.configFile }, cwd: f.dir, stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = createWriteStream(join(f.dir, `${name}.log`));
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  // taskset execs the command, so this pid is the server's own.
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return { name, child, pid: child.pid };
}

// ---- load loops -----------------------------------------------------------------------------

/**
 * Runs `step` about `perSecond` times a second until `endAt`, and never more than
 * `perSecond` × the run's length: a steady rate, not a flood, so the figures describe a long
 * ordinary day rather than a saturated server.
 */
async function paced(perSecond: number, seconds: number, endAt: number, step: () => Promise<void>): Promise<void> {
  const start = Date.now();
  const max = Math.ceil(perSecond * seconds);
  for (let i = 0; i < max && Date.now() < endAt; i++) {
    await step();
    const due = start + ((i + 1) * 1000) / perSecond;
    const wait = Math.min(due, endAt) - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const seconds = secondsArg(process.argv.slice(2));
  // The load runs here: pin this process to the load core so the servers keep theirs.
  // (Without taskset this fails quietly and the load simply runs unpinned.)
  if (cpus().length > LOAD_CPU) spawnSync('taskset', ['-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });

  const f = await createFixture({ tokenTtlSeconds: 120, purgeIntervalSeconds: 30 });
  const [gatewayPort, adminPort, authsvcPort] = [await freePort(), await freePort(), await freePort()];
  const config = parse(readFileSync(f.configFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(
    f.configFile,
    stringify({
      ...config,
      // Warnings and errors only, into a log file per process: silence would hide a failing server.
      log: { level: 'warn' },
      gateway: { listen: { host: '127.0.0.1', port: gatewayPort }, tokenTtlSeconds: 120 },
      admin: { listen: { host: '127.0.0.1', port: adminPort } },
      authsvc: { listen: { host: '127.0.0.1', port: authsvcPort }, service: f.service, issuer: f.issuer },
      // Off: every device here connects from 127.0.0.1, so the per-source limits would see the
      // whole fleet as one address and answer the steady load with 429s that a real fleet of
      // separate addresses would never get.
      limits: { enabled: false },
      // Short token lifetime (above) and a frequent purge, so token rows expire and are deleted
      // several times within the run, as they would over a day.
      maintenance: { purgeIntervalSeconds: 30 },
    }),
  );

  // An admin API token for the load, created as the operator would on the command line.
  const deps = openAuthority(loadConfig({ file: f.configFile, env: {} }));
  const factory = await deps.store.getFactoryByName(BENCH_FACTORY);
  if (!factory) throw new Error('the bench factory is missing');
  const api = await createApiToken(
    deps,
    { actor: 'operator', source: null },
    factory,
    { scopes: ['devices:read', 'devices:write', 'devices:test'], description: 'soak' },
    'operator',
  );
  // A CI pulling with an offline token: API tokens get refresh tokens, devices do not.
  const puller = await createApiToken(deps, { actor: 'operator', source: null }, factory, { scopes: ['containers:read'], description: 'soak puller' }, 'operator');
  await deps.store.close();
  const adminAuth = { Authorization: `Bearer ${api.secret}`, 'Content-Type': 'application/json' };
  const adminUrl = `http://127.0.0.1:${adminPort}/v1/factories/${BENCH_FACTORY}`;
  const realmUrl = `http://127.0.0.1:${authsvcPort}/token`;

  const services = [serve('gateway', f), serve('authsvc', f)];
  const stopAll = () => Promise.all(services.map((s) => stopProcess(s.child)));
  try {
    await waitUntil(async () => (await http(`http://127.0.0.1:${adminPort}/healthz`)).status === 200, 'admin API');
    await waitUntil(async () => (await http(`http://127.0.0.1:${authsvcPort}/healthz`)).status === 200, 'authsvc');

    // Null (counted as unexpected) when the admin API refuses the enrollment.
    const enroll = async (test: boolean): Promise<Device | null> => {
      const uuid = randomUUID();
      const pair = generateKeyPair('ec-p256');
      const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: BENCH_FACTORY }, ...pair });
      const body = test ? { csr, test: true, hours: 1, name: 'soak-test' } : { csr, name: 'soak-fleet' };
      const r = await http(`${adminUrl}/devices`, { method: 'POST', headers: adminAuth, body: JSON.stringify(body) });
      count('adminEnroll', r.status === 201, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
      if (r.status !== 201) return null;
      const e = JSON.parse(r.body) as { certificate: string; caCertificate: string; gatewayCa: string };
      return device(uuid, e.certificate, e.caCertificate, pair.privateKeyPem, e.gatewayCa);
    };

    // The fleet: the fixture's device and a few enrolled from CSRs through the admin API.
    const fleet: Device[] = [device(f.device.uuid, f.device.certPem, f.device.caPem, f.device.keyPem, f.tls.caPem)];
    for (let i = 1; i < FLEET_SIZE; i++) {
      const d = await enroll(false);
      if (!d) throw new Error(`the admin API refused to enroll a fleet device: ${firstErrors.join('; ')}`);
      fleet.push(d);
    }

    const mint = async (kind: 'hubCredsNew' | 'hubCredsKeepAlive', d: Device) => {
      try {
        const r = await hubCreds(gatewayPort, d, kind === 'hubCredsNew' ? fresh : d.keepAlive);
        count(kind, r.status === 200, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
        if (r.status === 200) {
          const c = JSON.parse(r.body) as { Username: string; Secret: string };
          d.token = { username: c.Username, secret: c.Secret };
        }
      } catch (e) {
        count(kind, false, describe(e));
      }
    };
    for (const d of fleet) await mint('hubCredsNew', d);

    const realmGet = async (token: { username: string; secret: string }) =>
      http(`${realmUrl}?service=${encodeURIComponent(f.service)}&scope=${encodeURIComponent(SCOPE)}`, {
        headers: { Authorization: basic(token.username, token.secret) },
      });
    const grant = (form: Record<string, string>) =>
      http(realmUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ service: f.service, client_id: 'soak', scope: SCOPE, ...form }).toString(),
      });
    const offline = async (token: { username: string; secret: string }) =>
      grant({ grant_type: 'password', access_type: 'offline', username: token.username, password: token.secret });

    const started = Date.now();
    const endAt = started + seconds * 1000;
    const samples: Sample[] = [];
    const [gw, au] = services as [Service, Service];
    const take = () => {
      const rss = (pid: number) => {
        const b = rssOf(pid);
        return b === null ? null : Math.round((b / MIB) * 10) / 10;
      };
      samples.push({
        t: Math.round((Date.now() - started) / 1000),
        gatewayRssMiB: rss(gw.pid),
        authsvcRssMiB: rss(au.pid),
        gatewayFds: fdsOf(gw.pid),
        authsvcFds: fdsOf(au.pid),
        requests: sum(requests),
        errors: sum(errors),
        byKind: { ...requests },
      });
      const s = samples[samples.length - 1];
      if (s) console.log(`soak t=${s.t}s  rss gw ${s.gatewayRssMiB} MiB / authsvc ${s.authsvcRssMiB} MiB  fds ${s.gatewayFds}/${s.authsvcFds}  requests ${s.requests}  errors ${s.errors}`);
    };
    take();
    const sampler = setInterval(take, SAMPLE_MS);

    // Round robin over the fleet (never empty: the fixture's device is in it).
    let n = 0;
    const pick = () => fleet[n++ % fleet.length] as Device;
    const withToken = () => pick().token;

    const loops: Promise<void>[] = [];
    // Devices asking for credentials on a new connection each time (a helper call), and on kept-alive ones.
    for (let i = 0; i < 2; i++) loops.push(paced(15, seconds, endAt, () => mint('hubCredsNew', pick())));
    for (let i = 0; i < 2; i++) loops.push(paced(30, seconds, endAt, () => mint('hubCredsKeepAlive', pick())));
    // Registry clients exchanging device tokens at the realm.
    for (let i = 0; i < 2; i++) {
      loops.push(
        paced(60, seconds, endAt, async () => {
          const t = withToken();
          if (!t) return;
          try {
            const r = await realmGet(t);
            count('realmGet', r.status === 200, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
          } catch (e) {
            count('realmGet', false, describe(e));
          }
        }),
      );
    }
    // OAuth2 clients: a password grant for an offline token now and then, refresh grants in between.
    let refresh: string | null = null;
    let refreshUses = 0;
    loops.push(
      paced(20, seconds, endAt, async () => {
        try {
          if (refresh === null || refreshUses >= 50) {
            const r = await offline({ username: puller.username, secret: puller.secret });
            count('realmRefresh', r.status === 200, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
            if (r.status === 200) refresh = (JSON.parse(r.body) as { refresh_token?: string }).refresh_token ?? null;
            refreshUses = 0;
            return;
          }
          const r = await grant({ grant_type: 'refresh_token', refresh_token: refresh });
          refreshUses++;
          count('realmRefresh', r.status === 200, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
        } catch (e) {
          count('realmRefresh', false, describe(e));
        }
      }),
    );
    // An administrator: lists devices, and every ~10 s enrolls a test device, uses it, revokes it
    // and checks that everything it holds is refused from then on.
    let tick = 0;
    loops.push(
      paced(2, seconds, endAt, async () => {
        try {
          const r = await http(`${adminUrl}/devices?limit=100`, { headers: adminAuth });
          count('adminList', r.status === 200, `HTTP ${r.status} ${r.body.slice(0, 200)}`);
        } catch (e) {
          count('adminList', false, describe(e));
        }
        if (tick++ % 20 !== 10) return;
        try {
          const d = await enroll(true);
          if (!d) return;
          await mint('hubCredsNew', d);
          const token = d.token;
          if (!token) return;
          const got = await realmGet(token);
          count('realmGet', got.status === 200, `HTTP ${got.status} ${got.body.slice(0, 200)}`);
          // A device asking for an offline token gets a registry token, and no refresh token.
          const off = await offline(token);
          const rt = off.status === 200 ? ((JSON.parse(off.body) as { refresh_token?: string }).refresh_token ?? null) : null;
          count('realmRefresh', off.status === 200 && rt === null, `HTTP ${off.status} ${off.body.slice(0, 200)}`);
          const rv = await http(`${adminUrl}/devices/${d.uuid}/revoke`, { method: 'POST', headers: adminAuth, body: JSON.stringify({ reason: 'soak' }) });
          count('adminRevoke', rv.status === 200, `HTTP ${rv.status} ${rv.body.slice(0, 200)}`);
          // After revocation: the gateway refuses the certificate (403: known device, not active),
          // the realm its device token (401) and its refresh token (400, invalid_grant).
          const gw = await hubCreds(gatewayPort, d, d.keepAlive);
          count('revokedRefused', gw.status === 403, `gateway answered a revoked device with HTTP ${gw.status}`);
          const again = await realmGet(token);
          count('revokedRefused', again.status === 401, `realm answered a revoked device's token with HTTP ${again.status}`);
          d.keepAlive.destroy();
        } catch (e) {
          count('adminEnroll', false, describe(e));
        }
      }),
    );
    await Promise.all(loops);
    clearInterval(sampler);
    take();
    fresh.destroy();
    for (const d of fleet) d.keepAlive.destroy();

    const verdict = judge(seconds, samples);
    const report = {
      seconds,
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      method: {
        processes: 'tollgate serve gateway (device listener + admin API) and tollgate serve authsvc, one SQLite store, both on core 0; the load in one process on core 1',
        fleet: `${FLEET_SIZE} enrolled devices; new mutual-TLS connections (2 loops x 15/s) and keep-alive (2 loops x 30/s) on /hub-creds/; GET /token (2 loops x 60/s); POST /token password and refresh grants (20/s); admin list (2/s); a test device enrolled, used, revoked and checked refused about every 10 s`,
        limits: 'off: one loopback address stands for the whole fleet',
        sampleSeconds: SAMPLE_MS / 1000,
        warmUp: 'the sample at 20% of the run',
      },
      requests,
      errors,
      firstErrors,
      checks: verdict.checks,
      met: verdict.met,
      samples,
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(RESULTS, 'soak.md'), markdown(report.date, seconds, verdict.checks, verdict.met, samples));
    console.log('');
    console.log(table(verdict.checks));
    if (firstErrors.length > 0) console.log(`first unexpected answers:\n  ${firstErrors.join('\n  ')}`);
    console.log(`soak ${verdict.met ? 'PASSED' : 'FAILED'} (${sum(requests)} requests, ${sum(errors)} unexpected) -> bench/results/soak.md`);
    process.exitCode = verdict.met ? 0 : 1;
  } finally {
    await stopAll();
    f.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
