import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTopology, type Topology } from '../support/topology.js';

/**
 * Faults an operator meets, each against running `tollgate serve` processes: the data directory
 * deleted or replaced under them, a full disk, a second instance on the same data directory. The
 * services must fail closed (no token answered, readiness 503) and say why; and the metrics live on
 * their own listeners.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Device {
  key: string;
  cert: string;
}

function gatewayGet(t: Topology, path: string, device: Device | null): Promise<Answer> {
  const ca = readFileSync(join(t.dir, 'certs', 'tls', 'ca.pem'), 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: t.gatewayPort, path, ca, servername: 'localhost', agent: false, ...(device ?? {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function httpGet(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

function testDevice(t: Topology, out: string): Device {
  const r = t.cli(['device', 'issue-test', 'demo', '--hours', '2', '--out', out]);
  if (r.status !== 0) throw new Error(`issue-test failed: ${r.stderr}`);
  return { key: readFileSync(join(t.dir, out, 'device.key'), 'utf8'), cert: readFileSync(join(t.dir, out, 'device.pem'), 'utf8') };
}

async function mint(t: Topology, device: Device): Promise<{ Username: string; Secret: string }> {
  const res = await gatewayGet(t, '/hub-creds/', device);
  if (res.status !== 200) throw new Error(`mint failed: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as { Username: string; Secret: string };
}

function exchange(t: Topology, creds: { Username: string; Secret: string }): Promise<Answer> {
  return httpGet(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=repository:demo/app:pull`, {
    authorization: `Basic ${Buffer.from(`${creds.Username}:${creds.Secret}`).toString('base64')}`,
  });
}

interface Readiness {
  gateway: Answer;
  admin: Answer;
  authsvc: Answer;
}

async function readiness(t: Topology): Promise<Readiness> {
  const [gateway, admin, authsvc] = await Promise.all([
    gatewayGet(t, '/readyz', null),
    httpGet(`http://127.0.0.1:${t.adminPort}/readyz`),
    httpGet(`http://127.0.0.1:${t.authsvcPort}/readyz`),
  ]);
  return { gateway, admin, authsvc };
}

function storeState(r: Readiness): string[] {
  return [r.gateway, r.admin, r.authsvc].map((a) => `${a.status} ${(JSON.parse(a.body) as { store?: string }).store}`);
}

const topologies: Topology[] = [];
async function topology(options: Parameters<typeof startTopology>[0] = {}): Promise<Topology> {
  const t = await startTopology({ registry: false, ...options });
  topologies.push(t);
  return t;
}

afterAll(async () => {
  for (const t of topologies) await t.stop();
});

describe('metrics listeners', () => {
  let t: Topology;
  beforeAll(async () => {
    t = await topology();
    const device = testDevice(t, 'device');
    await exchange(t, await mint(t, device));
  });

  it('serve the expiry gauges and the process metrics, per process', async () => {
    const gateway = await httpGet(`http://127.0.0.1:${t.metricsPorts.gateway}/metrics`);
    const authsvc = await httpGet(`http://127.0.0.1:${t.metricsPorts.authsvc}/metrics`);
    for (const scraped of [gateway, authsvc]) {
      expect(scraped.status).toBe(200);
      expect(scraped.headers['content-type']).toContain('text/plain');
      // The test device's two-hour certificate expires within the default 30 days.
      expect(scraped.body).toContain('tollgate_device_certificates_expiring{factory="demo"} 1');
      expect(scraped.body).toMatch(/tollgate_ca_certificate_expiry_timestamp_seconds\{factory="demo",ca="[^"]+",kind="online",state="active"\} \d{10}/);
      expect(scraped.body).toMatch(/tollgate_signing_certificate_expiry_timestamp_seconds\{kid="[A-Z0-9:]+",status="active"\} \d{10}/);
      expect(scraped.body).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(scraped.body).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    }
    expect(gateway.body).toMatch(/^tollgate_gateway_certificate_expiry_timestamp_seconds \d{10}$/m);
    expect(authsvc.body).not.toContain('tollgate_gateway_certificate_expiry_timestamp_seconds');
    expect(gateway.body).toContain('tollgate_tokens_issued_total{service="gateway",kind="device"} 1');
    expect(authsvc.body).toContain('tollgate_tokens_issued_total{service="authsvc",kind="registry"} 1');
  });

  it('tollgate ready asks the services on their listeners (exit 0 when ready)', () => {
    const gateway = t.cli(['ready', '--json']);
    expect(gateway.status, gateway.stderr).toBe(0);
    expect(JSON.parse(gateway.stdout)).toEqual([
      { service: 'gateway', ready: true, status: 200, body: { status: 'ready', store: 'ok', serverCertificate: 'ok' } },
      { service: 'admin', ready: true, status: 200, body: { status: 'ready', store: 'ok' } },
    ]);
    expect(t.cli(['ready', 'authsvc']).stdout).toMatch(/^ready {2}authsvc {2}200 {2}\{"status":"ready","store":"ok","signingKey":"ok","kid":/);
    expect(t.cli(['ready', 'registry']).status).toBe(2);
  });

  it('are the only place metrics are served: not on the device, realm or admin ports', async () => {
    expect((await gatewayGet(t, '/metrics', null)).status).toBe(404);
    expect((await httpGet(`http://127.0.0.1:${t.authsvcPort}/metrics`)).status).toBe(404);
    expect((await httpGet(`http://127.0.0.1:${t.adminPort}/metrics`)).status).toBe(404);
    expect((await httpGet(`http://127.0.0.1:${t.metricsPorts.gateway}/token`)).status).toBe(404);
  });
});

describe('the data directory under a running instance', () => {
  it('deleted: every service fails closed and says so', async () => {
    const t = await topology();
    const device = testDevice(t, 'device');
    const held = await mint(t, device);
    expect(storeState(await readiness(t))).toEqual(['200 ok', '200 ok', '200 ok']);

    rmSync(join(t.dir, 'data'), { recursive: true, force: true });

    const minted = await gatewayGet(t, '/hub-creds/', device);
    expect(minted.status).toBe(503);
    expect(minted.headers['retry-after']).toBeDefined();
    expect(JSON.parse(minted.body)).toMatchObject({ error: { code: 'store_file_missing' } });
    const exchanged = await exchange(t, held);
    expect(exchanged.status).toBe(503);
    expect(exchanged.body).not.toContain('"token"');
    expect(storeState(await readiness(t))).toEqual(['503 store_file_missing', '503 store_file_missing', '503 store_file_missing']);
    const ready = t.cli(['ready', 'gateway', 'authsvc']);
    expect(ready.status).toBe(1);
    expect(ready.stdout).toContain('NOT READY  gateway  503');
  });

  it('replaced by another copy: the same, as "replaced"', async () => {
    const t = await topology();
    const device = testDevice(t, 'device');
    const held = await mint(t, device);
    const data = join(t.dir, 'data');
    renameSync(data, `${data}.old`);
    mkdirSync(data);
    cpSync(join(`${data}.old`, 'tollgate.db'), join(data, 'tollgate.db'));

    expect(storeState(await readiness(t))).toEqual(['503 store_file_replaced', '503 store_file_replaced', '503 store_file_replaced']);
    expect((await gatewayGet(t, '/hub-creds/', device)).status).toBe(503);
    expect((await exchange(t, held)).status).toBe(503);
  });
});

/** A real full file system: a small tmpfs mounted at the data directory (needs root, as CI runs). */
function mountTmpfs(dir: string): void {
  const target = join(dir, 'data');
  mkdirSync(target);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', target], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mounting a tmpfs for the full-disk test needs root: ${r.stderr}`);
}

function unmount(dir: string): void {
  spawnSync('umount', ['-l', join(dir, 'data')]);
}

/** Writes until the file system says ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let i = 0; i < 10_000; i++) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    return;
  } finally {
    closeSync(fd);
  }
  throw new Error('the file system never filled up');
}

describe('a full disk', () => {
  it('answers 503 with Retry-After, reports it in readiness, and recovers once there is room', async () => {
    const t = await topology({ prepare: mountTmpfs, cleanup: unmount });
    const device = testDevice(t, 'device');
    const held = await mint(t, device);
    const filler = join(t.dir, 'data', 'filler');
    fill(filler);

    // The write-ahead log may still have room for a few writes; the first that needs more fails.
    let refused: Answer | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const res = await gatewayGet(t, '/hub-creds/', device);
      if (res.status !== 200) refused = res;
    }
    expect(refused?.status).toBe(503);
    expect(refused?.headers['retry-after']).toBe('30');
    expect(JSON.parse(refused!.body)).toMatchObject({ error: { code: 'store_full' } });
    const gateway = await gatewayGet(t, '/readyz', null);
    expect(gateway.status).toBe(503);
    expect(gateway.headers['retry-after']).toBe('30');
    expect(JSON.parse(gateway.body)).toMatchObject({ status: 'unavailable', store: 'store_full' });

    const exchanged = await exchange(t, held);
    expect(exchanged.status).toBe(503);
    expect(exchanged.headers['retry-after']).toBeDefined();
    expect(JSON.parse(exchanged.body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE', detail: { reason: 'store_full' } }] });
    expect(JSON.parse((await httpGet(`http://127.0.0.1:${t.authsvcPort}/readyz`)).body)).toMatchObject({ store: 'store_full' });

    rmSync(filler);
    expect(storeState(await readiness(t))).toEqual(['200 ok', '200 ok', '200 ok']);
    expect((await gatewayGet(t, '/hub-creds/', device)).status).toBe(200);
    expect((await exchange(t, held)).status).toBe(200);
  });
});

describe('a second instance on the same data directory', () => {
  it('refuses to start, naming the directory and the running one', async () => {
    const t = await topology();
    const dataDir = join(t.dir, 'data');
    for (const service of ['gateway', 'authsvc']) {
      const second = t.cli(['serve', service]);
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(new RegExp(`another tollgate ${service} \\(pid \\d+, since [^)]+\\) is running on the data directory ${dataDir}`));
      expect(second.stderr).toContain('(data_dir_locked)');
    }
    const up = t.cli(['up']);
    expect(up.status).toBe(1);
    expect(up.stderr).toContain(`is running on the data directory ${dataDir}`);
    expect(up.stdout).not.toContain('is starting');
    // The running instance is untouched.
    expect(storeState(await readiness(t))).toEqual(['200 ok', '200 ok', '200 ok']);
  });
});
