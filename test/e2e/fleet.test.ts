import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { startTopology, type Instance, type Topology } from '../support/topology.js';

/**
 * Several instances on one PostgreSQL, as real processes: two gateways (each with its admin API)
 * and two realms. What one instance changes, the others act on at once; what they count, they
 * count together; one of them dying under load costs nothing that was answered.
 */

const INTERVAL_S = 2;
const PER_DEVICE_BURST = 40;

interface DeviceFiles {
  uuid: string;
  cert: string;
  key: string;
  ca: string;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One request over a new mutual-TLS connection (no keep-alive: every request is a new handshake). */
function gatewayGet(port: number, path: string, device: DeviceFiles): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, cert: device.cert, key: device.key, ca: device.ca, servername: 'localhost', agent: false, timeout: 15_000 },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function realmGet(port: number, username: string, secret: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/token?service=tollgate-registry&scope=repository:fleet/app:pull`, {
    headers: { authorization: `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}` },
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  return res.status;
}

describe.skipIf(!postgresAvailable)('several gateway and realm instances on one PostgreSQL', () => {
  let t: Topology;
  let db: pg.Client;
  let operator: string;
  let gatewayA: Instance;
  let gatewayB: Instance;
  let realmA: Instance;
  let realmB: Instance;
  const started = Date.now();

  const admin = async (instance: Instance, method: string, path: string, body?: unknown): Promise<Answer> => {
    const res = await fetch(`http://127.0.0.1:${instance.adminPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${operator}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  /** A test device of `factory`, issued through instance `via`'s admin API. */
  const device = async (via: Instance, factory: string, name: string): Promise<DeviceFiles> => {
    const out = join(t.dir, 'devices', name);
    const issued = t.cliJson<{ device: { uuid: string } }>(['device', 'issue-test', factory, '--out', out], { TOLLGATE_URL: `http://127.0.0.1:${via.adminPort}`, TOLLGATE_TOKEN: operator });
    return {
      uuid: issued.device.uuid,
      cert: readFileSync(join(out, 'device.pem'), 'utf8'),
      key: readFileSync(join(out, 'device.key'), 'utf8'),
      ca: readFileSync(join(out, 'gateway-ca.pem'), 'utf8'),
    };
  };

  const rows = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows as T[];

  beforeAll(async () => {
    const url = await createTestDatabase();
    t = await startTopology({
      postgresUrl: url,
      replicas: 2,
      registry: false,
      config: {
        limits: { perDevice: { burst: PER_DEVICE_BURST, perSecond: 0.01 }, perSource: { burst: 1_000_000, perSecond: 1_000_000 } },
        maintenance: { purgeIntervalSeconds: INTERVAL_S },
      },
    });
    [gatewayA, gatewayB] = t.instances.filter((i) => i.service === 'gateway') as [Instance, Instance];
    [realmA, realmB] = t.instances.filter((i) => i.service === 'authsvc') as [Instance, Instance];
    db = new pg.Client({ connectionString: url });
    await db.connect();
    operator = t.cliJson<{ secret: string }>(['operator', 'token', 'create', '--description', 'fleet test']).secret;
    for (const f of ['fleet', 'limits']) {
      expect((await admin(gatewayA, 'POST', '/v1/factories', { name: f })).status).toBe(201);
      expect((await admin(gatewayA, 'POST', `/v1/factories/${f}/cas`, { kind: 'online' })).status).toBe(201);
    }
  }, 180_000);

  afterAll(async () => {
    await db?.end();
    await t?.stop();
  });

  it('refuses a device revoked through instance A at instance B on its very next request, its token too', async () => {
    const d = await device(gatewayA, 'fleet', 'revoked');
    const before = await gatewayGet(gatewayB.port, '/hub-creds/', d);
    expect(before.status).toBe(200);
    expect(await realmGet(realmB.port, before.body.Username as string, before.body.Secret as string)).toBe(200);
    expect((await admin(gatewayA, 'POST', `/v1/factories/fleet/devices/${d.uuid}/revoke`, { reason: 'stolen' })).status).toBe(200);
    const after = await gatewayGet(gatewayB.port, '/hub-creds/', d);
    expect([after.status, (after.body.error as { code?: string } | undefined)?.code]).toEqual([403, 'device_revoked']);
    expect(await realmGet(realmB.port, before.body.Username as string, before.body.Secret as string)).toBe(401);
  });

  it("trusts a CA registered through instance A on instance B's very next connection", async () => {
    expect((await admin(gatewayA, 'POST', '/v1/factories', { name: 'newcomer' })).status).toBe(201);
    const created = await admin(gatewayA, 'POST', '/v1/factories/newcomer/cas', { kind: 'online' });
    expect(created.status).toBe(201);
    // Certificates are judged against the store on each new connection: nothing to reload or wait for.
    const d = await device(gatewayA, 'newcomer', 'newcomer-device');
    expect((await gatewayGet(gatewayB.port, '/hub-creds/', d)).status).toBe(200);
    expect((await admin(gatewayA, 'POST', `/v1/factories/newcomer/cas/${created.body.id as string}/revoke`, { reason: 'key lost' })).status).toBe(200);
    const after = await gatewayGet(gatewayB.port, '/hub-creds/', d);
    expect([after.status, (after.body.error as { code?: string } | undefined)?.code]).toEqual([403, 'ca_revoked']);
  });

  it('limits a device hitting both gateways as one device', async () => {
    const d = await device(gatewayA, 'limits', 'greedy');
    const statuses: number[] = [];
    for (let i = 0; i < PER_DEVICE_BURST * 2; i++) statuses.push((await gatewayGet(i % 2 === 0 ? gatewayA.port : gatewayB.port, '/hub-creds/', d)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(PER_DEVICE_BURST);
    expect(statuses.filter((s) => s === 429)).toHaveLength(PER_DEVICE_BURST);
    expect(statuses.slice(PER_DEVICE_BURST).every((s) => s === 429)).toBe(true);
  });

  let killedAt = 0;
  it('keeps answering when an instance is killed under a mixed load; every token answered 200 works, and the audit trail has it all', { timeout: 180_000 }, async () => {
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => device(gatewayB, 'fleet', `load-${i}`)));
    const tokens: { username: string; secret: string }[] = [];
    let realmAnswers = 0;
    const afterKill = { gateway: 0, realm: 0, serverErrors: 0 };
    let killed = false;
    const deadline = Date.now() + 6_000;
    const worker = async (d: DeviceFiles, n: number) => {
      for (let i = 0; Date.now() < deadline && i < 15; i++) {
        const useA = (i + n) % 2 === 0;
        let minted: Answer;
        try {
          minted = await gatewayGet(useA ? gatewayA.port : gatewayB.port, '/hub-creds/', d);
        } catch {
          expect(useA && killed, 'only the killed gateway may fail to answer').toBe(true);
          continue;
        }
        if (minted.status >= 500) afterKill.serverErrors++;
        if (minted.status !== 200) continue;
        tokens.push({ username: minted.body.Username as string, secret: minted.body.Secret as string });
        if (killed && !useA) afterKill.gateway++;
        try {
          const status = await realmGet(useA ? realmA.port : realmB.port, minted.body.Username as string, minted.body.Secret as string);
          if (status >= 500) afterKill.serverErrors++;
          if (status === 200) {
            realmAnswers++;
            if (killed && !useA) afterKill.realm++;
          }
        } catch {
          expect(useA && killed, 'only the killed realm may fail to answer').toBe(true);
        }
      }
    };
    const load = Promise.all(devices.map((d, n) => worker(d, n)));
    // Kill once the load is well under way (two tokens per device), with most of it still to come:
    // how fast the workers get there depends on the machine, not on a fixed delay.
    for (const until = Date.now() + 3_000; tokens.length < 2 * devices.length && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    gatewayA.child.kill('SIGKILL');
    realmA.child.kill('SIGKILL');
    killed = true;
    killedAt = Date.now();
    await load;
    expect(afterKill.serverErrors).toBe(0);
    expect(afterKill.gateway).toBeGreaterThan(0);
    expect(afterKill.realm).toBeGreaterThan(0);
    // Every token a gateway answered was committed before the answer: the surviving realm takes it.
    for (const tok of tokens) expect(await realmGet(realmB.port, tok.username, tok.secret)).toBe(200);
    // ... and each has its audit record, as every realm answer has.
    const unaudited = await rows<{ n: string }>(
      `SELECT COUNT(*) AS n FROM api_tokens t WHERE t.kind = 'device'
         AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'token.minted' AND a.details::jsonb ->> 'tokenId' = t.id)`,
    );
    expect(Number(unaudited[0]!.n)).toBe(0);
    const uuids = devices.map((d) => d.uuid);
    const minted = await rows<{ n: string }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'token.minted' AND target = ANY($1)", [uuids]);
    expect(Number(minted[0]!.n)).toBeGreaterThanOrEqual(tokens.length);
    const issued = await rows<{ n: string }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'realm.token_issued' AND actor = ANY($1)", [uuids.map((u) => `device:${u}`)]);
    expect(Number(issued[0]!.n)).toBeGreaterThanOrEqual(realmAnswers + tokens.length);
  });

  it('ran maintenance once per interval across all four instances, and on after one died', async () => {
    // Four instances each look four times per interval; the store lets one of them run per interval.
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1000));
    const runs = await rows<{ details: string }>("SELECT details FROM audit_log WHERE action = 'maintenance.ran' ORDER BY id");
    const starts = runs.map((r) => Date.parse((JSON.parse(r.details) as { startedAt: string }).startedAt));
    const elapsed = Date.now() - started;
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!, `run ${i} came within an interval of the one before`).toBeGreaterThanOrEqual(INTERVAL_S * 1000);
    expect(starts.length).toBeLessThanOrEqual(Math.ceil(elapsed / (INTERVAL_S * 1000)));
    // ... and it kept running: at most one interval and a bit without a run, before the kill and after it.
    expect(starts.length).toBeGreaterThanOrEqual(Math.floor(elapsed / (INTERVAL_S * 1000) / 2));
    expect(starts.filter((s) => s > killedAt).length).toBeGreaterThanOrEqual(2);
  });
});
