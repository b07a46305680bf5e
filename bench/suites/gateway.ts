import type { Fixture } from '../lib/fixture.js';
import { runHttpsLoad, type HttpsLoadFigures } from '../lib/load.js';
import { startServer, sleep, withCpu } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { alternate, over, roundsFigure, roundsFor, throughputFigures, type Measurement } from '../lib/rounds.js';
import { childSpec } from './realm.js';

/**
 * The gateway: GET /hub-creds/ with the device certificate, once with a full mutual-TLS handshake
 * per request (what a credential-helper call costs) and once on keep-alive connections. Each
 * /hub-creds/ writes a token row and an audit row. The ceiling is node:https with the same
 * certificate, verifying the client's chain against the device CA like the gateway, answering a
 * constant: the cost of TLS and HTTP alone.
 */

export const NEW_CONN_CONCURRENCY = 16;
export const KEEPALIVE_CONCURRENCY = 32;

/** The gateway's goals: throughput at least this share of the ceiling's. */
export const GATEWAY_TARGETS = { newConnection: 0.7, keepAlive: 0.3 };

export type GatewayMeasurement = HttpsLoadFigures & Measurement;

export async function measureGateway(
  kind: 'gateway' | 'bare-https',
  f: Fixture,
  seconds: number,
  keepAlive: boolean,
  env: Record<string, string> = {},
): Promise<GatewayMeasurement> {
  const server = await startServer(kind, { ...childSpec(f), env }, f.dir);
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
  const rounds = roundsFor(o.quick);
  const figures: Figure[] = [];
  const method: Record<string, unknown> = {
    request: 'GET /hub-creds/ with the device certificate (mutual TLS); Tollgate writes a token row and an audit row per request',
    cores: 'server: 1 Node process pinned to core 0; load: 1 Node process pinned to core 1',
    load: 'HTTP/1.1 over node:tls, one request at a time per connection (bench/clients/https-load.ts)',
    ceiling: 'node:https, same server certificate, client chain verified against the device CA, peer certificate read once per connection, constant answer',
    logging: 'Tollgate at its default level (info)',
    durationSeconds: seconds,
    newConnectionConcurrency: NEW_CONN_CONCURRENCY,
    keepAliveConcurrency: KEEPALIVE_CONCURRENCY,
    rounds,
    roundsMeaning: 'Tollgate and ceiling measured alternately; each figure is the median of the rounds, spread = lowest and highest per-round ratio',
    note: 'new connections: no session resumption, so every request is a full handshake',
  };
  for (const keepAlive of [false, true]) {
    const label = keepAlive ? 'keep-alive' : 'new connection';
    const paired = await alternate(
      rounds,
      () => measureGateway('gateway', f, seconds, keepAlive),
      () => measureGateway('bare-https', f, seconds, keepAlive),
      (r, which) => o.log(`gateway: round ${r}/${rounds}: ${which === 'tollgate' ? 'Tollgate' : 'bare node:https ceiling'}, ${label}, ${seconds} s`),
    );
    const target = keepAlive ? GATEWAY_TARGETS.keepAlive : GATEWAY_TARGETS.newConnection;
    figures.push(
      ...throughputFigures('gateway', label, paired, { throughput: target, p99: null }, {
        concurrency: keepAlive ? KEEPALIVE_CONCURRENCY : NEW_CONN_CONCURRENCY,
        seconds,
        connectionsOpened: { tollgate: paired.tollgate.map((m) => m.connections), ceiling: paired.reference.map((m) => m.connections) },
      }),
    );
  }
  figures.push(...(await durabilityFigures(o, f, seconds, rounds)));
  return { figures, method };
}

/**
 * What store.sqlite.synchronous=FULL costs: the gateway on keep-alive (the most commits per second
 * of any route) with FULL against itself with NORMAL, alternated. FULL flushes the write-ahead log
 * to disk at every group commit; NORMAL leaves that to checkpoints.
 */
async function durabilityFigures(o: SuiteOptions, f: Fixture, seconds: number, rounds: number): Promise<Figure[]> {
  const paired = await alternate(
    rounds,
    () => measureGateway('gateway', f, seconds, true, { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'FULL' }),
    () => measureGateway('gateway', f, seconds, true, { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'NORMAL' }),
    (r, which) => o.log(`gateway: round ${r}/${rounds}: Tollgate keep-alive with synchronous=${which === 'tollgate' ? 'FULL' : 'NORMAL'}, ${seconds} s`),
  );
  const figure = (name: string, unit: string, pick: (m: GatewayMeasurement) => number): Figure =>
    roundsFigure({
      suite: 'gateway',
      name,
      unit,
      values: paired.tollgate.map(pick),
      references: paired.reference.map(pick),
      ratio: over,
      target: 'informational',
      meets: null,
      method: { reference: 'the same gateway with store.sqlite.synchronous=NORMAL (the default)', concurrency: KEEPALIVE_CONCURRENCY, seconds },
    });
  return [
    figure('keep-alive throughput, synchronous=FULL vs NORMAL', 'req/s', (m) => m.requestsPerSec),
    figure('keep-alive p99, synchronous=FULL vs NORMAL', 'ms', (m) => m.p99Ms),
  ];
}
