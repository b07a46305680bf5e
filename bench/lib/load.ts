import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult, LoadSpec } from '../clients/https-load.js';
import { LOAD_CPU, pinned, track } from './proc.js';
import { latencyOf } from './stats.js';

export interface HttpsLoadFigures {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  /** Fraction of its core the load client used: near 1, the client may have been the limit. */
  clientCpu: number;
  /** TLS connections the client opened. */
  connections: number;
}

/** Runs the mutual-TLS load client in a child process on the load core. */
export function runHttpsLoad(spec: LoadSpec, dir: string): Promise<HttpsLoadFigures> {
  const specFile = join(dir, `load-${process.hrtime.bigint()}.json`);
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  const [cmd, args] = pinned(LOAD_CPU, process.execPath, [join(import.meta.dirname, '..', 'clients', 'https-load.js'), specFile]);
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    let result: LoadResult | null = null;
    child.once('message', (m: unknown) => (result = m as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!result) return reject(new Error(`load client exited with ${String(code)} and no result`));
      const r: LoadResult = result;
      // Errors mean the figure is not the one wanted (refusals, resets): say so rather than report it.
      if (r.errors > r.requests / 100) return reject(new Error(`load client: ${r.errors} errors (first: ${String(r.firstError)})`));
      const lat = latencyOf(r.latenciesMs);
      resolve({ requestsPerSec: r.requests / r.seconds, p50Ms: lat.p50, p99Ms: lat.p99, requests: r.requests, errors: r.errors, clientCpu: r.cpu, connections: r.connections });
    });
  });
}
