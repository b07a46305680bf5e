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
  /** value / ceiling (or ceiling / value for latencies, so that higher is always better), or null. */
  ratio: number | null;
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
    '| figure | Tollgate | ceiling | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const f of report.figures) {
    const met = f.met === null ? 'n/a' : f.met ? 'yes' : '**no**';
    lines.push(`| ${f.suite}: ${f.name} | ${cell(f.value, f.unit)} | ${cell(f.ceiling, f.unit)} | ${cell(f.ratio)} | ${f.target} | ${met} |`);
  }
  const failed = Object.entries(report.suites).filter(([, s]) => s.error);
  if (failed.length > 0) {
    lines.push('', 'Suites that did not complete:', '');
    for (const [name, s] of failed) lines.push(`- ${name}: ${s.error ?? ''}`);
  }
  lines.push(
    '',
    'ratio: realm, gateway and e2e: Tollgate / ceiling for throughput and capacity, ceiling / Tollgate for latency (higher is better).',
    'scale and memory: the "ceiling" column is the reference (near-empty store, first half of the run, warm-up RSS) and the ratio is value / reference (lower is better).',
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
