/**
 * One measurement, for profiling a change: `node dist/bench/probe.js <what> [seconds] [rounds]`
 * where <what> is realm, gateway-new, gateway-keepalive or steady (the store size under steady
 * minting, quick settings). Tollgate and its ceiling alternately,
 * like the suites, printing throughput, capacity and the ratios. With
 * `BENCH_SERVER_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'` the measured servers write
 * CPU profiles (bench/lib/proc.ts passes it to the server child only).
 */
import { tmpdir } from 'node:os';
import { createFixture } from './lib/fixture.js';
import { measureGateway } from './suites/gateway.js';
import { measureRealm } from './suites/realm.js';
import { steadyMinting } from './suites/scale.js';
import type { SuiteOptions } from './lib/report.js';
import type { Measurement } from './lib/rounds.js';

type Sample = Measurement;

async function main(): Promise<void> {
  const what = process.argv[2] ?? 'realm';
  const seconds = Number(process.argv[3] ?? 4);
  const rounds = Number(process.argv[4] ?? 1);
  if (what === 'steady') {
    for (const fig of await steadyMinting({ quick: true, dir: tmpdir(), log: (m: string) => console.log(m) } satisfies SuiteOptions)) {
      console.log(`${fig.name}: ${fig.value} ${fig.unit} vs ${fig.ceiling} (ratio ${fig.ratio})`);
      console.log(JSON.stringify(fig.method && { bytes: fig.method.bytesAtEachSample, wal: fig.method.walBytesAtEachSample, audit: fig.method.auditRowsAtEachSample, rows: fig.method.rowsAtEachSample }));
    }
    return;
  }
  const f = await createFixture();
  const fmt = (s: Sample) =>
    `${s.requestsPerSec.toFixed(0)} req/s, ${(s.requestsPerSec / s.serverCpu).toFixed(0)} req/CPU-s, p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms, cpu server ${s.serverCpu.toFixed(2)} client ${s.clientCpu.toFixed(2)}`;
  try {
    for (let r = 0; r < rounds; r++) {
      let t: Sample;
      let c: Sample;
      if (what === 'realm') {
        t = await measureRealm('authsvc', f, seconds);
        c = await measureRealm('bare-realm', f, seconds);
      } else if (what === 'gateway-new' || what === 'gateway-keepalive') {
        const keepAlive = what === 'gateway-keepalive';
        t = await measureGateway('gateway', f, seconds, keepAlive);
        c = await measureGateway('bare-https', f, seconds, keepAlive);
      } else {
        throw new Error(`unknown probe ${what}`);
      }
      console.log(`${what} round ${r + 1}: tollgate ${fmt(t)}`);
      console.log(`${what} round ${r + 1}: ceiling  ${fmt(c)}`);
      console.log(
        `${what} round ${r + 1}: ratio throughput ${(t.requestsPerSec / c.requestsPerSec).toFixed(3)}, capacity ${(t.requestsPerSec / t.serverCpu / (c.requestsPerSec / c.serverCpu)).toFixed(3)}`,
      );
    }
  } finally {
    f.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
