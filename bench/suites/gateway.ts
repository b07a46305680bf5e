import type { Fixture } from '../lib/fixture.js';
import { runHttpsLoad, type HttpsLoadFigures } from '../lib/load.js';
import { startServer, sleep, withCpu } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { round } from '../lib/stats.js';
import { bestOf, capacityFigure, childSpec, roundsFor } from './realm.js';

/**
 * The gateway: GET /hub-creds/ with the device certificate, once with a full mutual-TLS handshake
 * per request (what a credential-helper call costs) and once on keep-alive connections. Each
 * /hub-creds/ writes a token row and an audit row. The ceiling is node:https with the same
 * certificate and requestCert, answering a constant: the cost of TLS and HTTP alone.
 */

export const NEW_CONN_CONCURRENCY = 16;
export const KEEPALIVE_CONCURRENCY = 32;

export async function measureGateway(kind: 'gateway' | 'bare-https', f: Fixture, seconds: number, keepAlive: boolean): Promise<HttpsLoadFigures & { serverCpu: number }> {
  const server = await startServer(kind, childSpec(f), f.dir);
  try {
    const spec = {
      port: server.port,
      path: '/hub-creds/',
      concurrency: keepAlive ? KEEPALIVE_CONCURRENCY : NEW_CONN_CONCURRENCY,
      keepAlive,
      ca: f.tls.caPem,
      cert: f.device.certPem + f.device.caPem,
      key: f.device.keyPem,
    };
    await runHttpsLoad({ ...spec, durationMs: Math.max(1000, (seconds * 1000) / 4) }, f.dir);
    await sleep(200);
    const { result, serverCpu } = await withCpu(server.pid, () => runHttpsLoad({ ...spec, durationMs: seconds * 1000 }, f.dir));
    return { ...result, serverCpu };
  } finally {
    await server.stop();
  }
}

export async function gatewaySuite(o: SuiteOptions, f: Fixture): Promise<SuiteResult> {
  const seconds = o.quick ? 4 : 20;
  const figures: Figure[] = [];
  const method: Record<string, unknown> = {
    request: 'GET /hub-creds/ with the device certificate (mutual TLS); Tollgate writes a token row and an audit row per request',
    cores: 'server: 1 Node process pinned to core 0; load: 1 Node process pinned to core 1',
    durationSeconds: seconds,
    newConnectionConcurrency: NEW_CONN_CONCURRENCY,
    keepAliveConcurrency: KEEPALIVE_CONCURRENCY,
    rounds: roundsFor(o.quick),
    roundsMeaning: 'Tollgate and ceiling measured alternately; each figure is the best of the rounds',
    note: 'new connections: agent without keep-alive and without TLS session cache, so every request is a full handshake',
  };
  for (const keepAlive of [false, true]) {
    const label = keepAlive ? 'keep-alive' : 'new connection';
    const rounds = roundsFor(o.quick);
    let t: (HttpsLoadFigures & { serverCpu: number }) | null = null;
    let c: (HttpsLoadFigures & { serverCpu: number }) | null = null;
    for (let r = 1; r <= rounds; r++) {
      o.log(`gateway: round ${r}/${rounds}: Tollgate, ${label}, ${seconds} s`);
      t = bestOf(t, await measureGateway('gateway', f, seconds, keepAlive));
      o.log(`gateway: round ${r}/${rounds}: bare node:https ceiling, ${label}, ${seconds} s`);
      c = bestOf(c, await measureGateway('bare-https', f, seconds, keepAlive));
    }
    if (!t || !c) throw new Error('no gateway measurement');
    const tollgate = t;
    const ceiling = c;
    const ratio = round(tollgate.requestsPerSec / ceiling.requestsPerSec, 3);
    figures.push(
      {
        suite: 'gateway',
        name: `${label} throughput`,
        value: tollgate.requestsPerSec,
        unit: 'req/s',
        ceiling: ceiling.requestsPerSec,
        ratio,
        target: keepAlive ? 'informational' : '>= 0.7x ceiling',
        met: keepAlive ? null : ratio >= 0.7,
        method: {
          concurrency: keepAlive ? KEEPALIVE_CONCURRENCY : NEW_CONN_CONCURRENCY,
          seconds,
          tollgateRequests: tollgate.requests,
          ceilingRequests: ceiling.requests,
          // Fraction of its core each server used: well below 1 means the load client was the limit.
          tollgateServerCpu: tollgate.serverCpu,
          ceilingServerCpu: ceiling.serverCpu,
        },
      },
      capacityFigure('gateway', `${label} capacity`, tollgate, ceiling, keepAlive ? 'informational' : '>= 0.7x ceiling'),
      { suite: 'gateway', name: `${label} p50`, value: tollgate.p50Ms, unit: 'ms', ceiling: ceiling.p50Ms, ratio: round(ceiling.p50Ms / tollgate.p50Ms, 3), target: 'informational', met: null },
      { suite: 'gateway', name: `${label} p99`, value: tollgate.p99Ms, unit: 'ms', ceiling: ceiling.p99Ms, ratio: round(ceiling.p99Ms / tollgate.p99Ms, 3), target: 'informational', met: null },
    );
  }
  return { figures, method };
}
