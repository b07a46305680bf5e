/**
 * Runs the benchmark suites one after the other and writes bench/results/latest.json and
 * latest.md. Every ceiling is measured in the same run on the same machine: absolute numbers move
 * with whatever else the machine does, ratios much less.
 *
 *   node dist/bench/run.js [--quick] [--only realm|gateway|device|services|scale|postgres|e2e|memory] [--report <name>]
 *
 * --report names the result files (bench/results/<name>.json and .md; default latest), so a run of
 * some suites can be kept beside the full run's figures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixture } from './lib/fixture.js';
import { machine, writeReport, type RunReport, type SuiteOptions, type SuiteResult } from './lib/report.js';
import { cpuCount } from './lib/proc.js';
import { deviceSuite } from './suites/device.js';
import { e2eSuite } from './suites/e2e.js';
import { gatewaySuite } from './suites/gateway.js';
import { memorySuite } from './suites/memory.js';
import { postgresSuite } from './suites/postgres.js';
import { realmSuite } from './suites/realm.js';
import { scaleSuite } from './suites/scale.js';
import { servicesSuite } from './suites/services.js';

const SUITES: Record<string, (o: SuiteOptions) => Promise<SuiteResult>> = {
  realm: async (o) => {
    const f = await createFixture();
    try {
      return await realmSuite(o, f);
    } finally {
      f.cleanup();
    }
  },
  gateway: async (o) => {
    const f = await createFixture();
    try {
      return await gatewaySuite(o, f);
    } finally {
      f.cleanup();
    }
  },
  device: deviceSuite,
  services: servicesSuite,
  scale: scaleSuite,
  postgres: postgresSuite,
  e2e: e2eSuite,
  memory: memorySuite,
};

function parseArgs(argv: string[]): { quick: boolean; only: string[]; reportName: string } {
  let quick = false;
  let reportName = 'latest';
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--only') {
      const name = argv[++i];
      if (!name || !(name in SUITES)) throw new Error(`--only needs one of: ${Object.keys(SUITES).join(', ')}`);
      only.push(name);
    } else if (a?.startsWith('--only=')) {
      const name = a.slice('--only='.length);
      if (!(name in SUITES)) throw new Error(`--only needs one of: ${Object.keys(SUITES).join(', ')}`);
      only.push(name);
    } else if (a === '--report') {
      const name = argv[++i];
      if (!name || !/^[a-z0-9][a-z0-9.-]{0,60}$/.test(name)) throw new Error('--report needs a file name such as postgres-quick');
      reportName = name;
    } else throw new Error(`unknown option ${String(a)}; use --quick, --only <${Object.keys(SUITES).join('|')}> and --report <name>`);
  }
  return { quick, only, reportName };
}

async function main(): Promise<void> {
  const { quick, only, reportName } = parseArgs(process.argv.slice(2));
  const names = only.length > 0 ? only : Object.keys(SUITES);
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-run-'));
  const started = Date.now();
  const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
  if (cpuCount() < 2) log('fewer than 2 cores: server and load share one core, ratios still compare like with like');
  const report: RunReport = { date: new Date().toISOString(), quick, ...machine(), totalSeconds: 0, suites: {}, figures: [] };
  let failed = false;
  try {
    for (const name of names) {
      const suite = SUITES[name];
      if (!suite) continue;
      const t0 = Date.now();
      log(`suite ${name}${quick ? ' (quick)' : ''}`);
      try {
        const r = await suite({ quick, dir, log });
        report.figures.push(...r.figures);
        report.suites[name] = { method: r.method, seconds: Math.round((Date.now() - t0) / 1000) };
      } catch (e) {
        // One broken suite should not throw away the others' figures.
        failed = true;
        const message = e instanceof Error ? e.message : String(e);
        log(`suite ${name} failed: ${message}`);
        report.suites[name] = { method: {}, error: message.split('\n')[0] ?? message, seconds: Math.round((Date.now() - t0) / 1000) };
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report.totalSeconds = (Date.now() - started) / 1000;
  const out = join(import.meta.dirname, '..', '..', 'bench', 'results');
  writeReport(out, report, reportName);
  log(`wrote ${join(out, `${reportName}.json`)} and ${reportName}.md`);
  for (const f of report.figures) {
    log(`${f.suite}: ${f.name}: ${typeof f.value === 'number' ? Math.round(f.value * 100) / 100 : f.value} ${f.unit}${f.ratio !== null ? ` (ratio ${f.ratio})` : ''}${f.met === null ? '' : f.met ? ' met' : ' MISSED'}`);
  }
  if (failed) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(2);
});
