import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { ChildKind, ChildSpec } from '../servers/child.js';

/**
 * Child processes and the cores they run on. The machine the benchmarks target has 2 cores:
 * the server under test gets core 0, the load generator core 1 (taskset), so neither steals the
 * other's CPU and a ceiling and Tollgate are measured under the same split.
 */

export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

const BENCH_DIR = join(import.meta.dirname, '..');
const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;

/** The command line that runs `args` pinned to `cpu` when taskset and that core exist. */
export function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  if (!hasTaskset || cpu >= cpuCount()) return [command, args];
  return ['taskset', ['-c', String(cpu), command, ...args]];
}

export function cpuCount(): number {
  return cpus().length;
}

/** Resident set size of a process in bytes (Linux /proc), or null once it is gone. */
export function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface RunningChild {
  kind: ChildKind;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

// Every process a benchmark starts, so that an interrupted run (Ctrl-C, a crash) leaves none behind.
const live = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    // An unref'd child would let the loop end before its 'exit' arrives.
    child.ref();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** Starts a server of `kind` in a child process pinned to the server core; resolves when it listens. */
export function startServer(kind: ChildKind, spec: ChildSpec, dir: string, cpu = SERVER_CPU): Promise<RunningChild> {
  const specFile = join(dir, `spec-${kind}.json`);
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  // Profiling hook (bench/probe.ts): extra Node options for the measured server only.
  const nodeOptions = (process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter((o) => o !== '');
  const [cmd, args] = pinned(cpu, process.execPath, [...nodeOptions, join(BENCH_DIR, 'servers', 'child.js'), kind, specFile]);
  // Logs go to a file, as a deployed service's would (to a journal or a file), not to this terminal.
  const logFd = openSync(join(dir, `${kind}.log`), 'a', 0o600);
  const child = track(spawn(cmd, args, { stdio: ['ignore', logFd, 'inherit', 'ipc'] }));
  closeSync(logFd);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stopProcess(child);
      reject(new Error(`${kind} did not start within 30 s`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited with ${String(code)} before listening`));
    });
    child.once('message', (m: unknown) => {
      clearTimeout(timer);
      const port = (m as { port?: unknown }).port;
      if (typeof port !== 'number' || child.pid === undefined) return reject(new Error(`${kind} sent no port`));
      child.removeAllListeners('exit');
      // The IPC channel must not keep the parent alive once the server is stopped.
      child.unref();
      child.channel?.unref();
      resolve({ kind, pid: child.pid, port, stop: () => stopProcess(child) });
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CPU time (user + system, seconds) a process has used so far, or NaN once it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; the fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; ticks of 1/100 s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU use of a process over a window, from samples of /proc/<pid>/stat every `everyMs`: the first
 * and the last sample that could still be read bound the window, so a process that exits (wrk,
 * the load client) is measured up to its last 100 ms instead of being lost at exit.
 */
export function cpuSampler(pid: number, everyMs = 100): { stop(): number } {
  let first: { cpu: number; at: number } | null = null;
  let last: { cpu: number; at: number } | null = null;
  const sample = () => {
    const cpu = cpuSecondsOf(pid);
    if (Number.isNaN(cpu)) return;
    const point = { cpu, at: performance.now() };
    first ??= point;
    last = point;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    /** Fraction of one core used between the first and the last sample (NaN without two samples). */
    stop() {
      sample();
      clearInterval(timer);
      if (!first || !last || last.at - first.at < everyMs) return Number.NaN;
      return Math.round(((last.cpu - first.cpu) / ((last.at - first.at) / 1000)) * 100) / 100;
    },
  };
}

/** Runs `work` and says how busy `pid` (the server) was meanwhile, as a fraction of one core. */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; serverCpu: number }> {
  const server = cpuSampler(pid);
  const result = await work();
  return { result, serverCpu: server.stop() };
}
