/**
 * Mutual-TLS load generator, run as a child process on the load core: `concurrency` loops each
 * sending GET requests back to back for `durationMs`. With keepAlive false every request is a new
 * TCP connection and a full TLS handshake with the client certificate (no session resumption:
 * maxCachedSessions 0), which is what a device calling the credential helper costs.
 *
 *   node https-load.js <json spec file>      -> sends { requests, errors, seconds, latenciesMs } over IPC
 */
import { readFileSync } from 'node:fs';
import { Agent, request, type RequestOptions } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface LoadSpec {
  port: number;
  path: string;
  concurrency: number;
  durationMs: number;
  keepAlive: boolean;
  ca: string;
  cert: string;
  key: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  /** Per-request latencies, sampled (at most ~200k kept) to bound the IPC message. */
  latenciesMs: number[];
}

async function main(): Promise<void> {
  const specFile = process.argv[2];
  if (!specFile) throw new Error('usage: https-load.js <spec.json>');
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as LoadSpec;
  const agent = spec.keepAlive
    ? new Agent({ keepAlive: true, maxSockets: spec.concurrency, maxCachedSessions: 0 })
    : new Agent({ keepAlive: false, maxCachedSessions: 0 });
  // Built once: passing ca/cert/key per request would parse the PEMs and build a context for every
  // connection, making the client, not the server, what is measured.
  const secureContext = createSecureContext({ ca: spec.ca, cert: spec.cert, key: spec.key });
  // tls.connect takes secureContext; https.RequestOptions' type does not list it, so it goes in
  // through a variable (no excess-property check) rather than a literal.
  const options: RequestOptions & { secureContext: SecureContext } = {
    host: '127.0.0.1',
    port: spec.port,
    path: spec.path,
    servername: 'localhost',
    secureContext,
    agent,
  };
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        options,
        (res) => {
          res.resume();
          res.once('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${String(res.statusCode)}`))));
          res.once('error', reject);
        },
      );
      req.once('error', reject);
      req.end();
    });

  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + spec.durationMs;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await once();
        requests++;
        if (latencies.length < 200_000) latencies.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, loop));
  const result: LoadResult = { requests, errors, firstError, seconds: (performance.now() - start) / 1000, latenciesMs: latencies };
  agent.destroy();
  process.send?.(result, () => process.exit(0));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
