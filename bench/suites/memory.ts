import { createFixture } from '../lib/fixture.js';
import { runHttpsLoad } from '../lib/load.js';
import { rssOf, startServer } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { round } from '../lib/stats.js';
import { runWrk } from '../lib/wrk.js';
import { basicHeader, childSpec, realmPath } from './realm.js';

/**
 * Memory under sustained load: the gateway (new mutual-TLS connections, minting) and authsvc
 * (realm exchanges) both loaded at once, RSS of each sampled every second. Warm-up RSS is the
 * sample at the end of the first quarter; the service is flat if the end RSS stays within 10%.
 * Both servers share core 0 here and both load generators core 1: the point is a steady,
 * long load, not peak throughput.
 */
export async function memorySuite(o: SuiteOptions): Promise<SuiteResult> {
  const seconds = o.quick ? 20 : 300;
  const f = await createFixture();
  const gateway = await startServer('gateway', childSpec(f), f.dir);
  const authsvc = await startServer('authsvc', childSpec(f), f.dir);
  try {
    const samples: { t: number; gateway: number | null; authsvc: number | null }[] = [];
    const start = Date.now();
    const sampler = setInterval(() => {
      samples.push({ t: Math.round((Date.now() - start) / 1000), gateway: rssOf(gateway.pid), authsvc: rssOf(authsvc.pid) });
    }, 1000);
    o.log(`memory: gateway + authsvc under load for ${seconds} s`);
    const [gw, realm] = await Promise.all([
      runHttpsLoad(
        {
          port: gateway.port,
          path: '/hub-creds/',
          concurrency: 8,
          keepAlive: false,
          durationMs: seconds * 1000,
          ca: f.tls.caPem,
          cert: f.device.certPem + f.device.caPem,
          key: f.device.keyPem,
        },
        f.dir,
      ),
      runWrk({ url: `http://127.0.0.1:${authsvc.port}${realmPath(f)}`, seconds, connections: 16, headers: { Authorization: basicHeader(f) } }),
    ]);
    clearInterval(sampler);
    const warmIndex = Math.max(0, Math.floor(samples.length / 4) - 1);
    const figures: Figure[] = [];
    for (const service of ['gateway', 'authsvc'] as const) {
      const series = samples.map((s) => s[service]).filter((v): v is number => v !== null);
      const warm = series[warmIndex] ?? Number.NaN;
      const end = series[series.length - 1] ?? Number.NaN;
      const growth = end / warm;
      figures.push({
        suite: 'memory',
        name: `${service} RSS, end vs warm-up`,
        value: round(end / 1048576, 1),
        unit: 'MiB',
        ceiling: round(warm / 1048576, 1),
        ratio: round(growth, 3),
        target: 'end <= 1.10x warm-up',
        met: growth <= 1.1,
        method: { rssMiBEachSecond: series.map((v) => round(v / 1048576, 1)) },
      });
    }
    return {
      figures,
      method: {
        seconds,
        warmUpSample: warmIndex + 1,
        gatewayLoad: `8 concurrent new mutual-TLS connections to /hub-creds/: ${gw.requests} requests`,
        realmLoad: `wrk -t1 -c16 on /token: ${realm.requests} requests`,
        cores: 'both servers on core 0, both load generators on core 1',
        ratioMeaning: 'end / warm-up (lower is better; target <= 1.10)',
      },
    };
  } finally {
    await Promise.all([gateway.stop(), authsvc.stop()]);
    f.cleanup();
  }
}
