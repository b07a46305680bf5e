import type { Fixture } from '../lib/fixture.js';
import { startServer, sleep, withCpu } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { round } from '../lib/stats.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import type { ChildSpec } from '../servers/child.js';

/**
 * The realm: GET /token with a device token (Basic) on keep-alive connections, the request every
 * pull makes. Tollgate's authsvc and the bare ceiling each run alone in a child process on the
 * server core; wrk (1 thread) drives them from the load core.
 */

export const REALM_CONNECTIONS = 32;

export function childSpec(f: Fixture): ChildSpec {
  return { configFile: f.configFile, tls: f.tls, token: f.token, service: f.service, issuer: f.issuer };
}

export function realmPath(f: Fixture): string {
  return `/token?service=${encodeURIComponent(f.service)}&scope=${encodeURIComponent(`repository:${'bench'}/app:pull`)}`;
}

export function basicHeader(f: Fixture): string {
  return 'Basic ' + Buffer.from(`${f.token.username}:${f.token.secret}`).toString('base64');
}

/** What every throughput measurement yields, whoever generated the load. */
export interface Measurement {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Fraction of one core the server used during the measurement. */
  serverCpu: number;
  /** Best requests per server CPU-second seen (set by bestOf). */
  capacity?: number;
}

const capacityOf = (m: Measurement) => m.capacity ?? m.requestsPerSec / m.serverCpu;

/**
 * Best of several measurements of the same server: highest throughput and capacity, lowest
 * latencies. Tollgate and its ceiling are measured alternately in rounds, so a burst of other work
 * on the machine hits either at most in one round and does not decide the ratio.
 */
export function bestOf<T extends Measurement>(a: T | null, b: T): T {
  if (!a) return { ...b, capacity: capacityOf(b) };
  return {
    ...(b.requestsPerSec > a.requestsPerSec ? b : a),
    p50Ms: Math.min(a.p50Ms, b.p50Ms),
    p99Ms: Math.min(a.p99Ms, b.p99Ms),
    capacity: Math.max(capacityOf(a), capacityOf(b)),
  };
}

/** Rounds of alternating measurements: 1 in a quick run, 2 in a full one. */
export const roundsFor = (quick: boolean) => (quick ? 1 : 2);

/**
 * Requests per second of server CPU: what the server would serve with its core to itself. On two
 * cores the load generator can be the limit (the server core then idles part of the time), and
 * throughput alone would flatter whichever server is slower; this figure does not depend on it.
 */
export function capacityFigure(suite: string, name: string, tollgate: Measurement, ceiling: Measurement, target: string): Figure {
  const t = capacityOf(tollgate);
  const c = capacityOf(ceiling);
  const ratio = round(t / c, 3);
  const threshold = Number(/([\d.]+)x/.exec(target)?.[1] ?? Number.NaN);
  return { suite, name, value: t, unit: 'req/CPU-s', ceiling: c, ratio, target, met: Number.isFinite(threshold) ? ratio >= threshold : null };
}

/** Warms the server up (JIT, caches, SQLite pages), then measures. */
export async function measureRealm(kind: 'authsvc' | 'bare-realm', f: Fixture, seconds: number): Promise<WrkResult & { serverCpu: number }> {
  const server = await startServer(kind, childSpec(f), f.dir);
  try {
    const url = `http://127.0.0.1:${server.port}${realmPath(f)}`;
    const headers = { Authorization: basicHeader(f) };
    await runWrk({ url, seconds: Math.max(1, Math.round(seconds / 4)), connections: REALM_CONNECTIONS, headers });
    await sleep(200);
    const { result, serverCpu } = await withCpu(server.pid, () => runWrk({ url, seconds, connections: REALM_CONNECTIONS, headers }));
    return { ...result, serverCpu };
  } finally {
    await server.stop();
  }
}

export async function realmSuite(o: SuiteOptions, f: Fixture): Promise<SuiteResult> {
  const seconds = o.quick ? 4 : 20;
  const rounds = roundsFor(o.quick);
  let t: (WrkResult & { serverCpu: number }) | null = null;
  let c: (WrkResult & { serverCpu: number }) | null = null;
  for (let r = 1; r <= rounds; r++) {
    o.log(`realm: round ${r}/${rounds}: Tollgate authsvc, ${seconds} s`);
    t = bestOf(t, await measureRealm('authsvc', f, seconds));
    o.log(`realm: round ${r}/${rounds}: bare node:http ceiling, ${seconds} s`);
    c = bestOf(c, await measureRealm('bare-realm', f, seconds));
  }
  if (!t || !c) throw new Error('no realm measurement');
  const tollgate = t;
  const ceiling = c;
  const method = {
    request: `GET ${realmPath(f)} with Basic device token, keep-alive`,
    load: `wrk -t1 -c${REALM_CONNECTIONS} -d${seconds}s --latency (after a ${Math.max(1, Math.round(seconds / 4))} s warm-up)`,
    cores: 'server: 1 Node process pinned to core 0; wrk: 1 thread pinned to core 1',
    durationSeconds: seconds,
    rounds,
    roundsMeaning: 'Tollgate and ceiling measured alternately; each figure is the best of the rounds',
    connections: REALM_CONNECTIONS,
    tollgateRequests: tollgate.requests,
    ceilingRequests: ceiling.requests,
    // Fraction of its core each server used: near 1 means the server, not wrk, was the limit.
    tollgateServerCpu: tollgate.serverCpu,
    ceilingServerCpu: ceiling.serverCpu,
  };
  const ratio = round(tollgate.requestsPerSec / ceiling.requestsPerSec, 3);
  const figures: Figure[] = [
    { suite: 'realm', name: 'throughput', value: tollgate.requestsPerSec, unit: 'req/s', ceiling: ceiling.requestsPerSec, ratio, target: '>= 0.5x ceiling', met: ratio >= 0.5, method },
    capacityFigure('realm', 'capacity', tollgate, ceiling, '>= 0.5x ceiling'),
    { suite: 'realm', name: 'p50 latency', value: tollgate.p50Ms, unit: 'ms', ceiling: ceiling.p50Ms, ratio: round(ceiling.p50Ms / tollgate.p50Ms, 3), target: 'informational', met: null },
    { suite: 'realm', name: 'p99 latency', value: tollgate.p99Ms, unit: 'ms', ceiling: ceiling.p99Ms, ratio: round(ceiling.p99Ms / tollgate.p99Ms, 3), target: 'informational', met: null },
  ];
  return { figures, method };
}
