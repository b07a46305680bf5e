import type { Figure } from './report.js';
import { median, round } from './stats.js';

/**
 * Rounds: Tollgate and its reference (the ceiling, or the small store) measured alternately, so
 * whatever else the machine does hits both alike. Every figure is the median of its rounds, with
 * the spread of the rounds (lowest and highest per-round ratio) beside it: one lucky or unlucky
 * round then neither makes nor hides a result.
 */

/** What one throughput measurement yields, whoever generated the load. */
export interface Measurement {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Fraction of one core the server used: near 1, the server was the limit. */
  serverCpu: number;
  /** Fraction of one core the load generator used: near 1, it may have been the limit instead. */
  clientCpu: number;
}

export interface Paired<T> {
  tollgate: T[];
  reference: T[];
}

/** `rounds` alternating pairs: Tollgate first, then the reference, each in a fresh server. */
export async function alternate<T>(
  rounds: number,
  tollgate: () => Promise<T>,
  reference: () => Promise<T>,
  log: (round: number, which: 'tollgate' | 'reference') => void,
): Promise<Paired<T>> {
  const out: Paired<T> = { tollgate: [], reference: [] };
  for (let r = 1; r <= rounds; r++) {
    log(r, 'tollgate');
    out.tollgate.push(await tollgate());
    log(r, 'reference');
    out.reference.push(await reference());
  }
  return out;
}

/** Rounds of alternating measurements: 1 in a quick run, 3 in a full one. */
export const roundsFor = (quick: boolean) => (quick ? 1 : 3);

/** Requests per second of server CPU: what the server would serve with a core to itself. */
export const capacityOf = (m: Measurement) => m.requestsPerSec / m.serverCpu;

export interface RoundsFigureSpec {
  suite: string;
  name: string;
  unit: string;
  /** Tollgate's value in each round, and the reference's in the same round. */
  values: number[];
  references: number[];
  /** The ratio reported, per round; oriented so the target reads naturally. */
  ratio(value: number, reference: number): number;
  target: string;
  /** Whether the median ratio meets the target; null for informational figures. */
  meets: ((ratio: number) => boolean) | null;
  method?: Record<string, unknown>;
}

export function roundsFigure(s: RoundsFigureSpec): Figure {
  const ratios = s.values.map((v, i) => s.ratio(v, s.references[i] ?? Number.NaN));
  const ratio = round(median(ratios), 3);
  return {
    suite: s.suite,
    name: s.name,
    value: median(s.values),
    unit: s.unit,
    ceiling: median(s.references),
    ratio,
    spread: [round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)],
    rounds: ratios.map((r) => round(r, 3)),
    target: s.target,
    met: s.meets ? s.meets(ratio) : null,
    ...(s.method ? { method: s.method } : {}),
  };
}

/** Every ratio is Tollgate's value over the reference's: for throughput higher is better, for times lower. */
export const over = (v: number, c: number) => v / c;

/** CPU use of both sides, medians of the rounds: shows who the bottleneck was. */
export function cpuOf(p: Paired<Measurement>): NonNullable<Figure['cpu']> {
  const med = (xs: Measurement[], k: 'serverCpu' | 'clientCpu') => round(median(xs.map((m) => m[k])), 2);
  return {
    tollgate: { server: med(p.tollgate, 'serverCpu'), client: med(p.tollgate, 'clientCpu') },
    ceiling: { server: med(p.reference, 'serverCpu'), client: med(p.reference, 'clientCpu') },
  };
}

export interface ThroughputTargets {
  /** Minimum Tollgate / ceiling for throughput and capacity; null: informational. */
  throughput: number | null;
  /** Maximum Tollgate p99 / ceiling p99; null: informational. */
  p99: number | null;
}

/**
 * The four figures of a Tollgate-vs-ceiling throughput measurement: throughput, capacity
 * (requests per server CPU-second, which does not depend on who the bottleneck was), p50, p99.
 * The throughput figure carries both sides' CPU use.
 */
export function throughputFigures(suite: string, label: string, p: Paired<Measurement>, targets: ThroughputTargets, method: Record<string, unknown>): Figure[] {
  const min = targets.throughput;
  const atLeast = min === null ? 'informational' : `>= ${min}x ceiling`;
  const meetsMin = min === null ? null : (r: number) => r >= min;
  const prefix = label ? `${label} ` : '';
  const perRound = (k: 'serverCpu' | 'clientCpu') => ({ tollgate: p.tollgate.map((m) => m[k]), ceiling: p.reference.map((m) => m[k]) });
  return [
    {
      ...roundsFigure({
        suite,
        name: `${prefix}throughput`,
        unit: 'req/s',
        values: p.tollgate.map((m) => m.requestsPerSec),
        references: p.reference.map((m) => m.requestsPerSec),
        ratio: over,
        target: atLeast,
        meets: meetsMin,
        method: { ...method, serverCpuEachRound: perRound('serverCpu'), clientCpuEachRound: perRound('clientCpu'), requestsEachRound: { tollgate: p.tollgate.map((m) => m.requests), ceiling: p.reference.map((m) => m.requests) } },
      }),
      cpu: cpuOf(p),
    },
    roundsFigure({
      suite,
      name: `${prefix}capacity`,
      unit: 'req/CPU-s',
      values: p.tollgate.map(capacityOf),
      references: p.reference.map(capacityOf),
      ratio: over,
      target: atLeast,
      meets: meetsMin,
    }),
    roundsFigure({ suite, name: `${prefix}p50`, unit: 'ms', values: p.tollgate.map((m) => m.p50Ms), references: p.reference.map((m) => m.p50Ms), ratio: over, target: 'informational', meets: null }),
    roundsFigure({
      suite,
      name: `${prefix}p99`,
      unit: 'ms',
      values: p.tollgate.map((m) => m.p99Ms),
      references: p.reference.map((m) => m.p99Ms),
      ratio: over,
      target: targets.p99 === null ? 'informational' : `<= ${targets.p99}x ceiling`,
      meets: targets.p99 === null ? null : (r) => r <= (targets.p99 as number),
    }),
  ];
}
