import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { rssOf, sleep, stopProcess, track } from '../lib/proc.js';
import type { Figure, SuiteOptions, SuiteResult } from '../lib/report.js';
import { over, roundsFigure } from '../lib/rounds.js';
import { median, round } from '../lib/stats.js';
import { freePort, ROOT } from '../lib/topology.js';

/**
 * The deployed services as an operator starts them: `tollgate up` (on a store and PKI made by an
 * earlier `tollgate init`, as every start after the first finds them) until every listener it opens
 * accepts connections (gateway, admin API, realm, and the two metrics listeners), and then the
 * memory of every process it runs, idle.
 *
 * Ceilings: a bare Node server process until its port accepts (start-up), and three of them, one
 * per listener, the gateway's with its TLS certificate (memory). Measured alternately in rounds.
 */

const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const BARE = join(ROOT, 'dist', 'bench', 'servers', 'bare-listen.js');

/** Goals: `up` within this multiple of a bare server's start-up; its processes within this multiple of three bare servers' memory. */
export const SERVICES_TARGETS = { startup: 5, rss: 1.5 };

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Milliseconds from `since` until every port accepts a TCP connection (tried every 5 ms). */
async function untilAccepting(ports: number[], since: number, child: ChildProcess, timeoutMs = 60_000): Promise<number> {
  const waiting = new Set(ports);
  for (;;) {
    for (const port of [...waiting]) if (await accepts(port)) waiting.delete(port);
    if (waiting.size === 0) return performance.now() - since;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the process exited (${child.exitCode ?? child.signalCode}) before ports ${[...waiting].join(', ')} accepted`);
    if (performance.now() - since > timeoutMs) throw new Error(`ports ${[...waiting].join(', ')} did not accept within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** A free port whose successor is free too. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    const next = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port + 1, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (next) return port;
  }
  throw new Error('no two consecutive free ports');
}

/** `pid` and all its descendants (Linux /proc). */
function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const visit = (p: number) => {
    tree.push(p);
    for (const c of parents.get(p) ?? []) visit(c);
  };
  visit(pid);
  return tree;
}

/** A child in a process group of its own, as a shell starts a job; stopped like Ctrl-C stops it (SIGINT to the group). */
function startJob(args: string[], env: NodeJS.ProcessEnv, cwd: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a', 0o600);
  const child = track(spawn(process.execPath, args, { env, cwd, stdio: ['ignore', fd, fd], detached: true }));
  closeSync(fd);
  return child;
}

async function stopJob(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(-child.pid, 'SIGINT');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface UpRound {
  startMs: number;
  rssBytes: number;
  processes: number;
  rssEachProcessMiB: number[];
}

export async function servicesSuite(o: SuiteOptions): Promise<SuiteResult> {
  const rounds = o.quick ? 3 : 10;
  const idleMs = o.quick ? 2000 : 5000;
  const dir = mkdtempSync(join(o.dir, 'services-'));
  const [gateway, admin, realm] = [await freePort(), await freePort(), await freePort()];
  // `up` gives the gateway process the configured metrics port and the realm the next one.
  const metrics = await freePortPair();
  const configFile = join(dir, 'tollgate.yml');
  writeFileSync(
    configFile,
    [
      'dataDir: data',
      'pkiDir: certs',
      `gateway: { listen: { host: 127.0.0.1, port: ${gateway} } }`,
      `admin: { listen: { host: 127.0.0.1, port: ${admin} } }`,
      `authsvc: { listen: { host: 127.0.0.1, port: ${realm} } }`,
      `metrics: { listen: { host: 127.0.0.1, port: ${metrics} } }`,
      '',
    ].join('\n'),
  );
  const { TOLLGATE_URL: _url, TOLLGATE_TOKEN: _token, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, TOLLGATE_CONFIG: configFile };
  const init = spawnSync(process.execPath, [CLI, 'init'], { env, cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (init.status !== 0) throw new Error(`tollgate init failed: ${init.stderr}${init.stdout}`);
  const cert = join(dir, 'certs', 'tls', 'server.pem');
  const key = join(dir, 'certs', 'tls', 'server.key');

  const up = async (): Promise<UpRound> => {
    const t0 = performance.now();
    const child = startJob([CLI, 'up'], env, dir, join(dir, 'up.log'));
    try {
      const startMs = await untilAccepting([gateway, admin, realm, metrics, metrics + 1], t0, child).catch((e: unknown) => {
        // What `up` said before it gave up, for the report: the run's directory is removed afterwards.
        const said = readFileSync(join(dir, 'up.log'), 'utf8').split('\n').filter((l) => !l.includes('"level":30')).slice(-6).join(' | ');
        throw new Error(`${(e as Error).message}; up's last words: ${said}`);
      });
      await sleep(idleMs);
      const pids = processTree(child.pid as number);
      const rss = pids.map((p) => rssOf(p) ?? 0);
      return { startMs, rssBytes: rss.reduce((a, b) => a + b, 0), processes: pids.length, rssEachProcessMiB: rss.map((b) => round(b / 1048576, 1)) };
    } finally {
      await stopJob(child);
    }
  };
  const bareStart = async (): Promise<number> => {
    const [port] = [await freePort()];
    const t0 = performance.now();
    const child = startJob([BARE, String(port)], env, dir, join(dir, 'bare.log'));
    try {
      return await untilAccepting([port as number], t0, child);
    } finally {
      await stopJob(child);
    }
  };
  const bareRss = async (): Promise<number> => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const children = ports.map((port, i) => startJob(i === 0 ? [BARE, String(port), cert, key] : [BARE, String(port)], env, dir, join(dir, 'bare.log')));
    try {
      await untilAccepting(ports, performance.now(), children[0] as ChildProcess);
      await sleep(idleMs);
      return children.map((c) => rssOf(c.pid as number) ?? 0).reduce((a, b) => a + b, 0);
    } finally {
      await Promise.all(children.map((c) => stopJob(c).catch(() => stopProcess(c))));
    }
  };

  const tollgate: UpRound[] = [];
  const bare: { startMs: number; rssBytes: number }[] = [];
  // One of each first, untimed: the file system cache then holds both sides' code.
  await up();
  await bareStart();
  for (let r = 1; r <= rounds; r++) {
    o.log(`services: round ${r}/${rounds}: tollgate up, then a bare server and three bare servers`);
    tollgate.push(await up());
    bare.push({ startMs: await bareStart(), rssBytes: await bareRss() });
  }
  const mib = (b: number) => round(b / 1048576, 1);
  const figures: Figure[] = [
    roundsFigure({
      suite: 'services',
      name: '`tollgate up` until all its listeners accept (ceiling: a bare server process until its port accepts)',
      unit: 'ms',
      values: tollgate.map((t) => t.startMs),
      references: bare.map((b) => b.startMs),
      ratio: over,
      target: `<= ${SERVICES_TARGETS.startup}x ceiling`,
      meets: (r) => r <= SERVICES_TARGETS.startup,
      method: { startMsEachRound: tollgate.map((t) => round(t.startMs, 0)), bareStartMsEachRound: bare.map((b) => round(b.startMs, 0)) },
    }),
    roundsFigure({
      suite: 'services',
      name: `RSS of every process of \`tollgate up\`, idle ${idleMs / 1000} s after start (ceiling: three bare servers, one per listener)`,
      unit: 'MiB',
      values: tollgate.map((t) => mib(t.rssBytes)),
      references: bare.map((b) => mib(b.rssBytes)),
      ratio: over,
      target: `<= ${SERVICES_TARGETS.rss}x ceiling`,
      meets: (r) => r <= SERVICES_TARGETS.rss,
      method: {
        processes: tollgate.map((t) => t.processes),
        rssEachProcessMiB: tollgate.map((t) => t.rssEachProcessMiB),
        medianProcessRssMiB: round(median(tollgate.flatMap((t) => t.rssEachProcessMiB)), 1),
      },
    }),
  ];
  return {
    figures,
    method: {
      rounds,
      start: 'warm: `tollgate init` ran once before; each `tollgate up` finds the PKI, store and registry files and reuses them',
      stop: 'SIGINT to the process group, as Ctrl-C in a terminal',
      idleMs,
      logLevel: 'info (the default)',
      cores: 'not pinned: up and its children use both cores, as they would',
    },
  };
}
