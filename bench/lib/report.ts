import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { round } from './stats.js';

/** One reported figure: Tollgate's value, the ceiling measured in the same run, and the target. */
export interface Figure {
  suite: string;
  name: string;
  value: number | string;
  unit: string;
  ceiling: number | null;
  /** value / ceiling (the median of the rounds' ratios when there were rounds), or null. */
  ratio: number | null;
  /** Lowest and highest ratio of the rounds. */
  spread?: [number, number];
  /** Each round's ratio. */
  rounds?: number[];
  /** CPU use (fraction of one core) of the server and of the load generator, for Tollgate and the ceiling. */
  cpu?: { tollgate: { server: number; client: number }; ceiling: { server: number; client: number } };
  target: string;
  /** null when the figure is informational. */
  met: boolean | null;
  /** How it was measured: durations, connections, sizes. */
  method?: Record<string, unknown>;
}

export interface SuiteOptions {
  quick: boolean;
  /** Scratch directory of this run. */
  dir: string;
  log(message: string): void;
}

export interface SuiteResult {
  figures: Figure[];
  method: Record<string, unknown>;
}

export interface RunReport {
  date: string;
  quick: boolean;
  node: string;
  cpu: string;
  cpus: number;
  totalSeconds: number;
  suites: Record<string, { method: Record<string, unknown>; error?: string; seconds: number }>;
  figures: Figure[];
}

export function machine(): { node: string; cpu: string; cpus: number } {
  const list = cpus();
  return { node: process.version, cpu: list[0]?.model ?? 'unknown', cpus: list.length };
}

function cell(v: number | string | null, unit = ''): string {
  if (v === null) return '-';
  if (typeof v === 'string') return v;
  return `${round(v, v >= 100 ? 0 : 2)}${unit ? ` ${unit}` : ''}`;
}

export function markdown(report: RunReport): string {
  const lines = [
    `# Tollgate benchmarks${report.quick ? ' (quick run)' : ''}`,
    '',
    `${report.date} · Node ${report.node} · ${report.cpu} × ${report.cpus} · ${Math.round(report.totalSeconds)} s in all`,
    '',
    '| figure | Tollgate | ceiling | ratio | spread of rounds | goal | met | CPU: server / load client |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const f of report.figures) {
    const met = f.met === null ? 'n/a' : f.met ? 'yes' : '**no**';
    const spread = f.spread && f.rounds && f.rounds.length > 1 ? `${cell(f.spread[0])}–${cell(f.spread[1])} (${f.rounds.length})` : f.rounds ? '1 round' : '-';
    const cpu = f.cpu ? `Tollgate ${cell(f.cpu.tollgate.server)} / ${cell(f.cpu.tollgate.client)}; ceiling ${cell(f.cpu.ceiling.server)} / ${cell(f.cpu.ceiling.client)}` : '';
    lines.push(`| ${f.suite}: ${f.name} | ${cell(f.value, f.unit)} | ${cell(f.ceiling, f.unit)} | ${cell(f.ratio)} | ${spread} | ${f.target} | ${met} | ${cpu} |`);
  }
  const failed = Object.entries(report.suites).filter(([, s]) => s.error);
  if (failed.length > 0) {
    lines.push('', 'Suites that did not complete:', '');
    for (const [name, s] of failed) lines.push(`- ${name}: ${s.error ?? ''}`);
  }
  lines.push(
    '',
    'ratio: Tollgate / ceiling (or / reference), the median of the rounds: for throughput and capacity higher is better, for times and sizes lower.',
    'The "ceiling" column is the reference measured in the same run: a bare server, the small store (scale), the first half of the run (store size), the warm-up RSS (memory), `node -e 0` (device), the default synchronous=NORMAL (gateway, synchronous=FULL).',
    'spread: the lowest and highest ratio of the rounds (their number in brackets). CPU: fraction of one core used by the server and by the load generator, medians of the rounds; a load generator near 1 while its server is well below 1 means the client, not the server, was the limit.',
    'See bench/README.md.',
    '',
  );
  return lines.join('\n');
}

/** Writes `<name>.json` and `<name>.md` (default: latest). */
export function writeReport(dir: string, report: RunReport, name = 'latest'): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dir, `${name}.md`), markdown(report));
}
