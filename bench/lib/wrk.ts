import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSampler, LOAD_CPU, pinned, track } from './proc.js';

/**
 * wrk, one thread on the load core. wrk is C and event-driven: one thread saturates a Node server
 * on another core without needing the second core itself.
 */
export interface WrkResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  /** Fraction of its core wrk used: near 1, wrk (not the server) may have been the limit. */
  clientCpu: number;
  raw: string;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return n;
}

export function parseWrk(out: string): Omit<WrkResult, 'clientCpu'> {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m?.[1] && m[2] ? toMs(m[1], m[2]) : Number.NaN;
  };
  const total = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (!rps?.[1]) throw new Error(`could not read wrk output:\n${out}`);
  return {
    requestsPerSec: Number(rps[1]),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: Number(total?.[1] ?? 0),
    non2xx: Number(non2xx?.[1] ?? 0),
    socketErrors: errs ? errs.slice(1).reduce((s, v) => s + Number(v), 0) : 0,
    raw: out,
  };
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
  /** A Lua script for wrk (-s), e.g. one that picks a random credential per request. */
  script?: string;
}

export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (options.script !== undefined) args.push('-s', options.script);
  args.push(options.url);
  const [cmd, argv] = pinned(LOAD_CPU, 'wrk', args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    const cpu = child.pid !== undefined ? cpuSampler(child.pid) : null;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const clientCpu = cpu?.stop() ?? Number.NaN;
      if (code !== 0) return reject(new Error(`wrk exited with ${String(code)}:\n${out}`));
      try {
        const r = parseWrk(out);
        // A benchmark of error answers measures nothing: refuse to report it.
        if (r.non2xx > 0) return reject(new Error(`wrk got ${r.non2xx} non-2xx answers from ${options.url}`));
        resolve({ ...r, clientCpu });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/**
 * A wrk Lua script that sends each request with a credential picked at random from `credentials`
 * (Basic username:secret), the requests built once at start-up so that picking one costs wrk a
 * table lookup. Returns the script's path.
 */
export function randomCredentialScript(dir: string, credentials: readonly { username: string; secret: string }[]): string {
  if (credentials.length === 0) throw new Error('no credentials to pick from');
  const list = join(dir, `credentials-${process.hrtime.bigint()}.txt`);
  writeFileSync(list, credentials.map((c) => 'Basic ' + Buffer.from(`${c.username}:${c.secret}`).toString('base64')).join('\n') + '\n', { mode: 0o600 });
  const script = `${list}.lua`;
  writeFileSync(
    script,
    [
      'local requests = {}',
      'init = function(args)',
      '  math.randomseed(os.time())',
      `  for line in io.lines(${JSON.stringify(list)}) do`,
      '    requests[#requests + 1] = wrk.format("GET", nil, { ["Authorization"] = line })',
      '  end',
      'end',
      'request = function()',
      '  return requests[math.random(#requests)]',
      'end',
      '',
    ].join('\n'),
  );
  return script;
}
