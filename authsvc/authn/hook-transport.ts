/**
 * How a question reaches a site's hook and how its raw answer comes back: an executable (JSON on
 * stdin, exit code and stdout back) or a webhook (JSON POSTed, status and body back). What the
 * answer means is hook.ts's business; this module only makes sure that, whatever the hook does,
 * the call ends within its time-out, reads a bounded number of bytes and leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Largest answer read from a hook's stdout or a webhook's body; a bigger one is not an answer. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Largest part of a hook's stderr kept for the log. */
export const MAX_STDERR_BYTES = 8 * 1024;
/** Waiting callers per running slot; past that a request is answered "no" at once. */
export const QUEUE_PER_SLOT = 16;

/** What a hook process sees in its environment: nothing of Tollgate's own (it may hold secrets). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type RawAnswer =
  | { kind: 'exited'; code: number; stdout: Buffer; stderr: Buffer; stderrTruncated: boolean }
  | { kind: 'http'; status: number; body: Buffer }
  /** Killed by a signal it did not get from us. */
  | { kind: 'signaled'; signal: string; stderr: Buffer; stderrTruncated: boolean }
  /** Ran out of time (it was killed, or the request aborted). */
  | { kind: 'timeout'; stderr?: Buffer; stderrTruncated?: boolean }
  /** Every slot was taken and the queue full, or no slot came free in time. */
  | { kind: 'busy' }
  /** Said more than MAX_ANSWER_BYTES (it was killed, or the body dropped). */
  | { kind: 'too_large'; stderr?: Buffer; stderrTruncated?: boolean }
  /** Could not be started or reached; `detail` is an errno-style code or a short, secret-free text. */
  | { kind: 'unreachable'; detail: string }
  /** The hook is shut down. */
  | { kind: 'closed' };

// ---- concurrency ------------------------------------------------------------------------------

interface Waiter {
  grant: (release: (() => void) | null) => void;
  timer: NodeJS.Timeout;
}

/**
 * At most `max` hook calls at once, so a flood of realm requests cannot fork-bomb the host or
 * hammer a webhook. Extra callers wait in order, each no longer than its own deadline; when the
 * queue itself is full they are turned away at once rather than piling up.
 */
export class Limiter {
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueued: number,
  ) {}

  /** A release function, or null when no slot came free before `waitMs` (or the queue was full). */
  acquire(waitMs: number): Promise<(() => void) | null> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueued || waitMs <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: (release) => resolve(release),
        timer: setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          resolve(null);
        }, waitMs),
      };
      this.queue.push(waiter);
    });
  }

  /** Turns every waiter away (on close). */
  drain(): void {
    for (const w of this.queue.splice(0)) {
      clearTimeout(w.timer);
      w.grant(null);
    }
  }

  get running(): number {
    return this.active;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) {
        // The slot passes straight to the next waiter: `active` stays the same.
        clearTimeout(next.timer);
        next.grant(this.releaser());
      } else {
        this.active--;
      }
    };
  }
}

// ---- executables ------------------------------------------------------------------------------

/**
 * Runs `argv` without a shell, in its own process group, with `input` on stdin. Resolves (never
 * rejects) once the process is gone: on a time-out or an oversized answer the whole group gets
 * SIGKILL, so a hook's own children die with it, and Node reaps the hook itself.
 */
export function runCommand(argv: readonly string[], input: string, timeoutMs: number, closing: AbortSignal): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined) return resolve({ kind: 'unreachable', detail: 'no command' });
    if (closing.aborted) return resolve({ kind: 'closed' });

    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        shell: false,
        // Its own process group: a time-out kills the hook and everything it started.
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        // Tollgate's environment may hold secrets (admin tokens, cloud keys): the hook gets PATH only.
        env: { PATH: process.env.PATH ?? DEFAULT_PATH },
        cwd: '/',
        windowsHide: true,
      });
    } catch (e) {
      return resolve({ kind: 'unreachable', detail: errnoCode(e) });
    }

    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    let stderrTruncated = false;
    let ended: 'timeout' | 'too_large' | 'closed' | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let settled = false;

    const stderrBuffer = () => Buffer.concat(stderr);
    const finish = (answer: RawAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      closing.removeEventListener('abort', onClosing);
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.stdin?.destroy();
      resolve(answer);
    };
    const endedAnswer = (): RawAnswer => {
      if (ended === 'closed') return { kind: 'closed' };
      return { kind: ended ?? 'timeout', stderr: stderrBuffer(), stderrTruncated };
    };
    const killGroup = () => {
      const pid = child.pid;
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // The group is gone already, or the hook left it; the hook itself still gets the signal.
        child.kill('SIGKILL');
      }
    };
    const stop = (why: 'timeout' | 'too_large' | 'closed') => {
      if (ended !== null || settled) return;
      ended = why;
      if (exit !== null) {
        // The hook has exited but something it left behind still holds its pipes.
        killGroup();
        finish(endedAnswer());
      } else {
        // SIGKILL cannot be ignored: 'exit' follows, and the answer is given then.
        killGroup();
      }
    };

    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onClosing = () => stop('closed');
    closing.addEventListener('abort', onClosing, { once: true });

    child.on('error', (e) => {
      // Without a pid, spawning failed (ENOENT, EACCES...); otherwise a kill raced the exit.
      if (child.pid === undefined) finish({ kind: 'unreachable', detail: errnoCode(e) });
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (ended !== null) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_ANSWER_BYTES) return stop('too_large');
      stdout.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      const room = MAX_STDERR_BYTES - stderrBytes;
      if (room <= 0) {
        stderrTruncated = true;
        return;
      }
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (kept.length < chunk.length) stderrTruncated = true;
      stderr.push(kept);
      stderrBytes += kept.length;
    });
    child.stdout?.on('error', () => undefined);
    child.stderr?.on('error', () => undefined);
    // A hook that exits without reading its input makes this write fail with EPIPE: not our failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);

    child.on('exit', (code, signal) => {
      exit = { code, signal };
      if (ended !== null) finish(endedAnswer());
    });
    child.on('close', () => {
      if (ended !== null) return finish(endedAnswer());
      if (exit === null) return;
      if (exit.signal !== null || exit.code === null) {
        return finish({ kind: 'signaled', signal: exit.signal ?? 'unknown', stderr: stderrBuffer(), stderrTruncated });
      }
      finish({ kind: 'exited', code: exit.code, stdout: Buffer.concat(stdout), stderr: stderrBuffer(), stderrTruncated });
    });
  });
}

function errnoCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'spawn_failed';
}

// ---- webhooks ---------------------------------------------------------------------------------

/**
 * POSTs `body` as JSON to `url`. Redirects are not followed (a redirect could carry the password
 * to another host); the body is read up to MAX_ANSWER_BYTES; the whole exchange is bounded by
 * `timeoutMs`. Resolves, never rejects.
 */
export async function postJson(
  url: string,
  body: string,
  timeoutMs: number,
  closing: AbortSignal,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  if (closing.aborted) return { kind: 'closed' };
  const controller = new AbortController();
  let why: 'timeout' | 'closed' | null = null;
  const timer = setTimeout(() => {
    why = 'timeout';
    controller.abort();
  }, timeoutMs);
  const onClosing = () => {
    why = 'closed';
    controller.abort();
  };
  closing.addEventListener('abort', onClosing, { once: true });
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json' },
      body,
      redirect: 'manual',
      signal: controller.signal,
    });
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (Number.isFinite(declared) && declared > MAX_ANSWER_BYTES) {
      controller.abort();
      return { kind: 'too_large' };
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > MAX_ANSWER_BYTES) {
          controller.abort();
          await reader.cancel().catch(() => undefined);
          return { kind: 'too_large' };
        }
        chunks.push(value);
      }
    }
    return { kind: 'http', status: res.status, body: Buffer.concat(chunks) };
  } catch (e) {
    if (why === 'timeout') return { kind: 'timeout' };
    if (why === 'closed') return { kind: 'closed' };
    return { kind: 'unreachable', detail: fetchFailure(e) };
  } finally {
    clearTimeout(timer);
    closing.removeEventListener('abort', onClosing);
  }
}

/** A short, secret-free description of a network failure (undici puts the errno in `cause`). */
function fetchFailure(e: unknown): string {
  const cause = (e as { cause?: unknown } | null)?.cause;
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  return 'network_error';
}
