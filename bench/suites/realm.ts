import type { Fixture } from '../lib/fixture.js';
import { startServer, sleep, withCpu } from '../lib/proc.js';
import type { SuiteOptions, SuiteResult } from '../lib/report.js';
import { alternate, roundsFor, throughputFigures, type Measurement } from '../lib/rounds.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import type { ChildSpec } from '../servers/child.js';

/**
 * The realm: GET /token with a device token (Basic) on keep-alive connections, the request every
 * pull makes. Tollgate's authsvc and the bare ceiling each run alone in a child process on the
 * server core; wrk (1 thread) drives them from the load core.
 */

export const REALM_CONNECTIONS = 32;

/** The realm's goals: throughput at least this share of the ceiling's, p99 at most this multiple. */
export const REALM_TARGETS = { throughput: 0.8, p99: 2 };

export function childSpec(f: Fixture): ChildSpec {
  return { configFile: f.configFile, tls: f.tls, deviceCaPem: f.device.caPem, token: f.token, service: f.service, issuer: f.issuer };
}

export function realmPath(f: Fixture): string {
  return `/token?service=${encodeURIComponent(f.service)}&scope=${encodeURIComponent(`repository:${'bench'}/app:pull`)}`;
}

export function basicHeader(f: Fixture): string {
  return 'Basic ' + Buffer.from(`${f.token.username}:${f.token.secret}`).toString('base64');
}

export type RealmMeasurement = WrkResult & Measurement;

export interface RealmLoad {
  /** A wrk Lua script that sets the Authorization of each request (random credentials); default: the fixture's token. */
  script?: string;
}

/** Warms the server up (JIT, caches, SQLite pages), then measures. */
export async function measureRealm(kind: 'authsvc' | 'bare-realm', f: Fixture, seconds: number, load: RealmLoad = {}): Promise<RealmMeasurement> {
  const server = await startServer(kind, childSpec(f), f.dir);
  try {
    const url = `http://127.0.0.1:${server.port}${realmPath(f)}`;
    const how = load.script !== undefined ? { script: load.script } : { headers: { Authorization: basicHeader(f) } };
    await runWrk({ url, seconds: Math.max(1, Math.round(seconds / 4)), connections: REALM_CONNECTIONS, ...how });
    await sleep(200);
    const { result, serverCpu } = await withCpu(server.pid, () => runWrk({ url, seconds, connections: REALM_CONNECTIONS, ...how }));
    return { ...result, serverCpu };
  } finally {
    await server.stop();
  }
}

export async function realmSuite(o: SuiteOptions, f: Fixture): Promise<SuiteResult> {
  const seconds = o.quick ? 4 : 20;
  const rounds = roundsFor(o.quick);
  const paired = await alternate(
    rounds,
    () => measureRealm('authsvc', f, seconds),
    () => measureRealm('bare-realm', f, seconds),
    (r, which) => o.log(`realm: round ${r}/${rounds}: ${which === 'tollgate' ? 'Tollgate authsvc' : 'bare node:http ceiling'}, ${seconds} s`),
  );
  const method = {
    request: `GET ${realmPath(f)} with Basic device token, keep-alive`,
    load: `wrk -t1 -c${REALM_CONNECTIONS} -d${seconds}s --latency (after a ${Math.max(1, Math.round(seconds / 4))} s warm-up)`,
    cores: 'server: 1 Node process pinned to core 0; wrk: 1 thread pinned to core 1',
    logging: 'Tollgate at its default level (info): one request line per token, as in production',
    durationSeconds: seconds,
    rounds,
    roundsMeaning: 'Tollgate and ceiling measured alternately; each figure is the median of the rounds, spread = lowest and highest per-round ratio',
    connections: REALM_CONNECTIONS,
  };
  return { figures: throughputFigures('realm', '', paired, REALM_TARGETS, method), method };
}
