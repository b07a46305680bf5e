import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { mintDeviceToken } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { schedulePurge } from '../../shared/ops/purge.js';
import { openAuthority } from '../../shared/runtime.js';
import { bulkFill } from '../lib/bulk.js';
import { createFixture, type Fixture } from '../lib/fixture.js';
import { sleep } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { alternate, over, roundsFigure } from '../lib/rounds.js';
import { median, round } from '../lib/stats.js';
import { randomCredentialScript } from '../lib/wrk.js';
import { measureGateway } from './gateway.js';
import { measureRealm } from './realm.js';

/**
 * Does a big store slow the hot paths down? The realm and the gateway (new connections) measured
 * on a store with many devices and tokens against a near-empty one, same run. Then: does the
 * token table stay bounded when devices keep minting and expired tokens are purged?
 */

function dbBytes(path: string): number {
  let total = 0;
  for (const p of [path, `${path}-wal`]) if (existsSync(p)) total += statSync(p).size;
  return total;
}

interface StoreUnderTest {
  f: Fixture;
  /** wrk script presenting the store's sampled tokens at random. */
  script: string;
}

async function latencies(store: StoreUnderTest, seconds: number) {
  const realm = await measureRealm('authsvc', store.f, seconds, { script: store.script });
  const gateway = await measureGateway('gateway', store.f, seconds, false);
  return { realm, gateway };
}

type Measured = Awaited<ReturnType<typeof latencies>>;

export async function steadyMinting(o: SuiteOptions): Promise<Figure[]> {
  const seconds = o.quick ? 20 : 180;
  const ttlSeconds = o.quick ? 2 : 10;
  const purgeEverySeconds = 3;
  // Audit retention far below what configuration allows (whole days), for the same reason: the
  // purge then deletes audit records within the run, as it does in production after N days.
  const auditRetentionSeconds = o.quick ? 4 : 20;
  // A fixed rate, not back to back: then the live set (rate x lifetime) is the same all run long,
  // and a file that still grows is the store's doing, not a burst of speed in the second half
  // (back to back, the rate follows whatever else the machine is doing).
  const mintsPerSecond = 1000;
  const f = await createFixture();
  try {
    const config = loadConfig({ file: f.configFile, env: {} });
    const deps = openAuthority(config);
    // A TTL far below what configuration allows (60 s minimum), so expiry and purge cycle many
    // times within the run; the store neither knows nor cares how long tokens live.
    deps.policy = { ...deps.policy, deviceTokenTtlSeconds: ttlSeconds };
    const device = await deps.store.getDevice(f.device.uuid);
    if (!device) throw new Error('fixture device missing');
    const samples: { t: number; rows: number; auditRows: number; bytes: number; walBytes: number }[] = [];
    const reader = new Database(f.databasePath, { readonly: true });
    const count = reader.prepare('SELECT COUNT(*) AS n FROM api_tokens');
    // One audit record per mint; the scheduled purge deletes those older than the retention.
    const audits = reader.prepare('SELECT COUNT(*) AS n FROM audit_log');
    const start = Date.now();
    let minted = 0;
    let purged = 0;
    let auditPurged = 0;
    const sampler = setInterval(() => {
      const row = count.get() as { n: number };
      const audit = audits.get() as { n: number | null };
      samples.push({ t: Math.round((Date.now() - start) / 1000), rows: row.n, auditRows: audit.n ?? 0, bytes: dbBytes(f.databasePath), walBytes: dbBytes(`${f.databasePath}-wal`) });
    }, 1000);
    // The purge authsvc schedules, with the retention in milliseconds instead of days.
    const stopPurge = schedulePurge({
      store: deps.store,
      intervalMs: purgeEverySeconds * 1000,
      auditRetentionMs: auditRetentionSeconds * 1000,
      now: Date.now,
      log: createLogger('bench', 'silent'),
      onRun: (run) => {
        purged += run.tokens;
        auditPurged += run.auditRecords;
      },
    });
    o.log(`scale: steady minting for ${seconds} s, token TTL ${ttlSeconds} s, audit retention ${auditRetentionSeconds} s, purge every ${purgeEverySeconds} s`);
    while (Date.now() - start < seconds * 1000) {
      const due = Math.floor(((Date.now() - start) * mintsPerSecond) / 1000);
      if (minted >= due) {
        await sleep(5);
        continue;
      }
      await mintDeviceToken(deps, device, '127.0.0.1');
      minted++;
      // Let the sampler and the purge timers run: the store is synchronous underneath.
      if (minted % 100 === 0) await yieldToLoop();
    }
    clearInterval(sampler);
    stopPurge();
    reader.close();
    await deps.store.close();
    // Levelled off: after the first expiry + purge cycle, the second half never climbs much above the first.
    const settled = samples.filter((s) => s.t > Math.max(ttlSeconds, auditRetentionSeconds) + purgeEverySeconds);
    const half = Math.floor(settled.length / 2);
    const maxOf = (xs: typeof samples, k: 'rows' | 'bytes') => Math.max(0, ...xs.map((s) => s[k]));
    const rowsFirst = maxOf(settled.slice(0, half), 'rows');
    const rowsSecond = maxOf(settled.slice(half), 'rows');
    const bytesFirst = maxOf(settled.slice(0, half), 'bytes');
    const bytesSecond = maxOf(settled.slice(half), 'bytes');
    const method = { seconds, ttlSeconds, auditRetentionSeconds, purgeEverySeconds, targetMintsPerSecond: mintsPerSecond, minted, purged, auditPurged, mintsPerSecond: round(minted / seconds, 0), samples };
    const last = samples[samples.length - 1];
    return [
      {
        suite: 'scale',
        name: 'api_tokens rows under steady minting (max, 2nd half vs 1st)',
        value: rowsSecond,
        unit: 'rows',
        ceiling: rowsFirst,
        ratio: rowsFirst > 0 ? round(rowsSecond / rowsFirst, 3) : null,
        target: 'levels off: 2nd half max <= 1.25x 1st half max',
        met: settled.length >= 4 && rowsSecond <= 1.25 * rowsFirst,
        method: { ...method, rowsAtEachSample: samples.map((s) => s.rows), minted, lastRows: last?.rows ?? null },
      },
      {
        suite: 'scale',
        name: `DB file size under steady minting, audit retention ${auditRetentionSeconds} s (max, 2nd half vs 1st)`,
        value: round(bytesSecond / 1048576, 2),
        unit: 'MiB',
        ceiling: round(bytesFirst / 1048576, 2),
        ratio: bytesFirst > 0 ? round(bytesSecond / bytesFirst, 3) : null,
        target: 'levels off: 2nd half max <= 1.25x 1st half max',
        met: settled.length >= 4 && bytesSecond <= 1.25 * bytesFirst,
        method: {
          bytesAtEachSample: samples.map((s) => s.bytes),
          auditRowsAtEachSample: samples.map((s) => s.auditRows),
          walBytesAtEachSample: samples.map((s) => s.walBytes),
          note: `includes audit_log: one row per mint, deleted by the scheduled purge once older than ${auditRetentionSeconds} s (maintenance.auditRetentionDays in production)`,
        },
      },
    ];
  } finally {
    f.cleanup();
  }
}

/** Store sizes: the big one, and the small one it is compared with; tokens presented at random from `sample` of each. */
function sizes(quick: boolean) {
  return quick
    ? { big: { devices: 10_000, tokens: 100_000 }, small: { devices: 1_000, tokens: 10_000 }, sample: 10_000 }
    : { big: { devices: 1_000_000, tokens: 10_000_000 }, small: { devices: 10_000, tokens: 100_000 }, sample: 100_000 };
}

export async function scaleSuite(o: SuiteOptions): Promise<SuiteResult> {
  const { big: bigSize, small: smallSize, sample } = sizes(o.quick);
  const seconds = o.quick ? 4 : 15;
  const small = await createFixture();
  const big = await createFixture();
  const figures: Figure[] = [];
  try {
    o.log(`scale: filling the small store with ${smallSize.devices.toLocaleString('en')} devices and ${smallSize.tokens.toLocaleString('en')} tokens`);
    const smallCredentials = bulkFill(small, smallSize.devices, smallSize.tokens, o.log, sample);
    o.log(`scale: filling the big store with ${bigSize.devices.toLocaleString('en')} devices and ${bigSize.tokens.toLocaleString('en')} tokens`);
    const fillStart = Date.now();
    const bigCredentials = bulkFill(big, bigSize.devices, bigSize.tokens, o.log, sample);
    const fillSeconds = (Date.now() - fillStart) / 1000;
    const bigBytes = dbBytes(big.databasePath);
    const smallStore: StoreUnderTest = { f: small, script: randomCredentialScript(small.dir, smallCredentials) };
    const bigStore: StoreUnderTest = { f: big, script: randomCredentialScript(big.dir, bigCredentials) };
    // Alternating rounds: whatever else runs on the machine then hits both stores alike.
    const rounds = o.quick ? 1 : 3;
    const paired = await alternate(
      rounds,
      () => latencies(bigStore, seconds),
      () => latencies(smallStore, seconds),
      (r, which) =>
        o.log(
          which === 'tollgate'
            ? `scale: round ${r}/${rounds}: big store (${round(bigBytes / 1048576, 0)} MiB), realm and gateway, ${seconds} s each`
            : `scale: round ${r}/${rounds}: small store, realm and gateway, ${seconds} s each`,
        ),
    );
    const pair = (name: string, pick: (m: Measured) => number): Figure =>
      roundsFigure({
        suite: 'scale',
        name,
        unit: 'ms',
        values: paired.tollgate.map(pick),
        references: paired.reference.map(pick),
        ratio: over,
        target: '<= 1.25x small store',
        meets: (r) => r <= 1.25,
      });
    // Here the "ceiling" column is the small store and the ratio big / small (lower is better).
    figures.push(
      pair('realm p50, big vs small store (random tokens)', (m) => m.realm.p50Ms),
      pair('realm p99, big vs small store (random tokens)', (m) => m.realm.p99Ms),
      pair('gateway (new conn) p50, big vs small store', (m) => m.gateway.p50Ms),
      pair('gateway (new conn) p99, big vs small store', (m) => m.gateway.p99Ms),
    );
    figures.push(...(await steadyMinting(o)));
    const med = (xs: number[]) => round(median(xs), 0);
    return {
      figures,
      method: {
        big: bigSize,
        small: smallSize,
        tokensPresented: `${sample.toLocaleString('en')} tokens of each store, sampled evenly over its fill, each realm request picking one at random (wrk Lua script); the gateway presents the fixture device's certificate and inserts into the store's token index`,
        fillSeconds: round(fillSeconds, 1),
        bigStoreMiB: round(bigBytes / 1048576, 1),
        secondsPerMeasurement: seconds,
        rounds,
        roundsMeaning: 'big and small store measured alternately; each figure is the median of the rounds, spread = lowest and highest per-round ratio',
        ratioMeaning: 'big / small (lower is better; target <= 1.25)',
        throughput: {
          realmSmall: med(paired.reference.map((m) => m.realm.requestsPerSec)),
          realmBig: med(paired.tollgate.map((m) => m.realm.requestsPerSec)),
          gatewaySmall: med(paired.reference.map((m) => m.gateway.requestsPerSec)),
          gatewayBig: med(paired.tollgate.map((m) => m.gateway.requestsPerSec)),
        },
      },
    };
  } finally {
    small.cleanup();
    big.cleanup();
  }
}
