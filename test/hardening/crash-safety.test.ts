import Database from 'better-sqlite3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { freePort } from '../support/ports.js';
import { CLI } from '../support/topology.js';

/**
 * The gateway and the realm as real processes, killed with SIGKILL in the middle of a burst of
 * enrollments, token mints and realm exchanges, then restarted on the same database. Whatever a
 * client was told happened must still be true, and the database must be whole and consistent.
 */

const ENROLLMENTS = 300;
const BURST_MS = 1_500;

let dir: string;
let env: NodeJS.ProcessEnv;
let ports: { gateway: number; admin: number; authsvc: number };
let children: ChildProcess[] = [];
let adminSecret: string;
let device: { cert: string; key: string; ca: string };

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function startServices(): void {
  children = ['gateway', 'authsvc'].map((service) => spawn(process.execPath, [CLI, 'serve', service], { env, cwd: dir, stdio: 'ignore' }));
}

async function waitUntil(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${ms} ms`);
}

async function servicesUp(): Promise<void> {
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${ports.authsvc}/readyz`)).status === 200, 'authsvc');
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${ports.admin}/healthz`)).status === 200, 'admin API');
  await waitUntil(async () => (await hubCreds(new Agent({ keepAlive: false }))).status === 200, 'gateway');
}

function killHard(): Promise<void> {
  return Promise.all(
    children.map(
      (c) =>
        new Promise<void>((done) => {
          if (c.exitCode !== null || c.signalCode !== null) return done();
          c.once('exit', () => done());
          c.kill('SIGKILL');
        }),
    ),
  ).then(() => undefined);
}

function hubCreds(agent: Agent): Promise<{ status: number; body: { Username?: string; Secret?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: ports.gateway, path: '/hub-creds/', ca: device.ca, cert: device.cert, key: device.key, servername: 'localhost', agent },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { Username?: string; Secret?: string } });
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function realmPull(username: string, secret: string): Promise<{ status: number; access: unknown }> {
  const res = await fetch(`http://127.0.0.1:${ports.authsvc}/token?service=tollgate-registry&scope=repository:demo/app:pull`, {
    headers: { authorization: basicAuthorization(username, secret) },
  });
  const body = (await res.json()) as { token?: string };
  const access = body.token ? (JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { access: unknown }).access : null;
  return { status: res.status, access };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-crash-'));
  ports = { gateway: await freePort(), admin: await freePort(), authsvc: await freePort() };
  const configFile = join(dir, 'tollgate.yml');
  writeFileSync(
    configFile,
    [
      'dataDir: data',
      'pkiDir: certs',
      // `tollgate init` generates the development PKI the services run on.
      'development: true',
      'log: { level: warn }',
      `gateway: { listen: { host: 127.0.0.1, port: ${ports.gateway} } }`,
      `admin: { listen: { host: 127.0.0.1, port: ${ports.admin} } }`,
      `authsvc: { listen: { host: 127.0.0.1, port: ${ports.authsvc} }, service: tollgate-registry, issuer: tollgate }`,
      // The burst comes from one device and one address on purpose; limits are tested elsewhere.
      'limits: { enabled: false }',
      // No metrics listeners: their fixed default ports would collide with other suites' services.
      'metrics: { enabled: false }',
      '',
    ].join('\n'),
  );
  const { TOLLGATE_URL: _url, TOLLGATE_TOKEN: _token, ...inherited } = process.env;
  env = { ...inherited, TOLLGATE_CONFIG: configFile };
  const init = cli(['init']);
  if (init.status !== 0) throw new Error(`init failed: ${init.stderr}${init.stdout}`);
  const token = cli(['token', 'create', 'demo', '--scope', 'devices:write', '--json']);
  if (token.status !== 0) throw new Error(`token create failed: ${token.stderr}${token.stdout}`);
  adminSecret = (JSON.parse(token.stdout) as { secret: string }).secret;
  const out = join(dir, 'device');
  const issued = cli(['device', 'issue-test', 'demo', '--out', out, '--hours', '2']);
  if (issued.status !== 0) throw new Error(`issue-test failed: ${issued.stderr}${issued.stdout}`);
  device = { cert: readFileSync(join(out, 'device.pem'), 'utf8'), key: readFileSync(join(out, 'device.key'), 'utf8'), ca: readFileSync(join(out, 'gateway-ca.pem'), 'utf8') };
  startServices();
  await servicesUp();
}, 90_000);

afterAll(async () => {
  await killHard();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('crash safety: SIGKILL mid-burst, then restart', () => {
  it('keeps every answered enrollment and token, and a whole, consistent database', { timeout: 90_000 }, async () => {
    // Keys and CSRs first, so the burst is all I/O against the services.
    const csrs = await Promise.all(
      Array.from({ length: ENROLLMENTS }, async () => {
        const uuid = randomUUID();
        const pair = generateKeyPair('ec-p256');
        return { uuid, csr: await createCsr({ subject: { commonName: uuid, organizationalUnit: 'demo' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'] }) };
      }),
    );
    const enrolled: string[] = [];
    const minted: { username: string; secret: string }[] = [];
    const exchanged: { username: string; secret: string }[] = [];
    let stop = false;

    const enrollLoop = async () => {
      for (const { uuid, csr } of csrs) {
        if (stop) return;
        const res = await fetch(`http://127.0.0.1:${ports.admin}/v1/factories/demo/devices`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminSecret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ csr }),
        }).catch(() => null);
        if (res?.status === 201) enrolled.push(uuid);
        if (res) await res.arrayBuffer().catch(() => undefined);
      }
    };
    const mintLoop = async () => {
      const agent = new Agent({ keepAlive: true });
      while (!stop) {
        const r = await hubCreds(agent).catch(() => null);
        if (r?.status === 200 && r.body.Username && r.body.Secret) minted.push({ username: r.body.Username, secret: r.body.Secret });
        if (!r) await new Promise((res) => setTimeout(res, 20));
      }
      agent.destroy();
    };
    const realmLoop = async () => {
      while (!stop) {
        const creds = minted[minted.length - 1];
        const r = creds ? await realmPull(creds.username, creds.secret).catch(() => null) : null;
        if (creds && r?.status === 200) exchanged.push(creds);
        if (!r) await new Promise((res) => setTimeout(res, 20));
      }
    };
    const loops = Promise.all([enrollLoop(), mintLoop(), mintLoop(), realmLoop(), realmLoop()]);
    await new Promise((r) => setTimeout(r, BURST_MS));
    await killHard();
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await loops;
    // The burst did real work before the kill, or the test proves nothing.
    expect(minted.length).toBeGreaterThan(5);
    expect(enrolled.length).toBeGreaterThan(0);
    // ...and the kill landed while enrollments were still coming.
    expect(enrolled.length).toBeLessThan(ENROLLMENTS);
    expect(exchanged.length).toBeGreaterThan(0);

    startServices();
    await servicesUp();

    const db = new Database(join(dir, 'data', 'tollgate.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      const devices = new Set((db.prepare('SELECT uuid FROM devices').all() as { uuid: string }[]).map((r) => r.uuid));
      const audited = new Set(
        (db.prepare("SELECT target FROM audit_log WHERE action = 'device.enrolled' AND outcome = 'success'").all() as { target: string }[]).map((r) => r.target),
      );
      // Nothing was deleted in this test, so the two sets are equal: no row without its record.
      expect([...devices].filter((u) => !audited.has(u))).toEqual([]);
      expect([...audited].filter((u) => !devices.has(u))).toEqual([]);
      expect(enrolled.filter((u) => !devices.has(u))).toEqual([]);
    } finally {
      db.close();
    }

    // Every token a client was handed still works at the restarted realm.
    const failures: string[] = [];
    for (const creds of minted) {
      const r = await realmPull(creds.username, creds.secret);
      if (r.status !== 200 || JSON.stringify(r.access) !== JSON.stringify([{ type: 'repository', name: 'demo/app', actions: ['pull'] }])) {
        failures.push(`${creds.username}: ${r.status}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

/**
 * Runs on the processes the crash test left running (restarted): the gateway, the realm and the
 * CLI in local mode are three writers on one SQLite file, all at once.
 */
describe('concurrency: gateway, realm and CLI writing one database at once', () => {
  const MINTS = 200;
  const EXCHANGES = 100;
  const CLI_ENROLLMENTS = 20;

  function count(sql: string): number {
    const db = new Database(join(dir, 'data', 'tollgate.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare(sql).get() as { n: number }).n;
    } finally {
      db.close();
    }
  }

  function cliAsync(args: string[]): Promise<{ status: number; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('exit', (code) => resolve({ status: code ?? -1, output }));
    });
  }

  it('answers every request without a busy error and loses no write', { timeout: 90_000 }, async () => {
    const seed = await hubCreds(new Agent({ keepAlive: false }));
    expect(seed.status).toBe(200);
    const csrFiles = await Promise.all(
      Array.from({ length: CLI_ENROLLMENTS }, async (_, i) => {
        const uuid = randomUUID();
        const pair = generateKeyPair('ec-p256');
        const file = join(dir, `cli-${i}.csr`);
        writeFileSync(file, await createCsr({ subject: { commonName: uuid, organizationalUnit: 'demo' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'] }));
        return { uuid, file };
      }),
    );
    const deviceTokensBefore = count("SELECT count(*) AS n FROM api_tokens WHERE kind = 'device'");
    const issuedBefore = count("SELECT count(*) AS n FROM audit_log WHERE action = 'realm.token_issued'");
    const devicesBefore = count('SELECT count(*) AS n FROM devices');

    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const [mints, exchanges, enrollments] = await Promise.all([
      Promise.all(Array.from({ length: MINTS }, () => hubCreds(agent).then((r) => r.status, (e: Error) => `error ${e.message}`))),
      Promise.all(Array.from({ length: EXCHANGES }, () => realmPull(seed.body.Username!, seed.body.Secret!).then((r) => r.status, (e: Error) => `error ${e.message}`))),
      Promise.all(csrFiles.map(({ file }) => cliAsync(['device', 'enroll', 'demo', '--csr', file, '--json']))),
    ]);
    agent.destroy();

    expect(mints.filter((s) => s !== 200)).toEqual([]);
    expect(exchanges.filter((s) => s !== 200)).toEqual([]);
    expect(enrollments.filter((r) => r.status !== 0 || /busy|locked/i.test(r.output)).map((r) => r.output)).toEqual([]);

    expect(count("SELECT count(*) AS n FROM api_tokens WHERE kind = 'device'") - deviceTokensBefore).toBe(MINTS);
    expect(count("SELECT count(*) AS n FROM audit_log WHERE action = 'realm.token_issued'") - issuedBefore).toBe(EXCHANGES);
    expect(count('SELECT count(*) AS n FROM devices') - devicesBefore).toBe(CLI_ENROLLMENTS);
    for (const { uuid } of csrFiles) expect(count(`SELECT count(*) AS n FROM devices WHERE uuid = '${uuid}'`)).toBe(1);
  });
});
