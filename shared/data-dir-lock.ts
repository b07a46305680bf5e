import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { conflict } from './errors.js';

/**
 * One running instance of each service per data directory. The gateway and the realm share a
 * data directory (and the CLI uses it alongside them), but two gateways or two realms on one are
 * a mistake an operator makes with a second `tollgate up` or a unit started twice: the second
 * would otherwise fail only on its port, or not at all on another port, and both would purge,
 * reload and write the same store as if alone.
 *
 * `<dataDir>/<service>.lock` is created exclusively and holds the owner's pid and host. A lock
 * whose owner no longer runs on this host (killed, crashed, power lost) is stale and taken over.
 */

export interface LockOwner {
  pid: number;
  host: string;
  service: string;
  since: string;
}

export interface HeldLock {
  file: string;
  release(): void;
}

export function lockFileOf(dataDir: string, service: string): string {
  return join(dataDir, `${service}.lock`);
}

function readOwner(file: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof owner.pid !== 'number' || typeof owner.host !== 'string') return null;
    return { pid: owner.pid, host: owner.host, service: String(owner.service ?? '?'), since: String(owner.since ?? '?') };
  } catch {
    return null;
  }
}

/** Whether `pid` is a running process of this machine (EPERM: it runs, as another user). */
function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live owner of the lock, or null if there is none or it is stale. */
export function liveOwner(file: string): LockOwner | null {
  const owner = readOwner(file);
  if (!owner) return null;
  // Another host's lock (a shared network volume) cannot be checked from here: honour it.
  if (owner.host !== hostname()) return owner;
  return owner.pid !== process.pid && isRunning(owner.pid) ? owner : null;
}

function lockedError(dataDir: string, service: string, owner: LockOwner): Error {
  const where = owner.host === hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
  return conflict(
    'data_dir_locked',
    `another tollgate ${service} (${where}, since ${owner.since}) is running on the data directory ${dataDir}; stop it first, or give this one its own dataDir`,
  );
}

/** Refuses if a live instance of any of `services` holds `dataDir` (what `up` checks before starting). */
export function assertUnlocked(dataDir: string, services: readonly string[]): void {
  for (const service of services) {
    const owner = liveOwner(lockFileOf(dataDir, service));
    if (owner) throw lockedError(dataDir, service, owner);
  }
}

/** Takes `<dataDir>/<service>.lock` or throws `data_dir_locked` naming the directory and the owner. */
export function lockDataDir(dataDir: string, service: string): HeldLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = lockFileOf(dataDir, service);
  const mine: LockOwner = { pid: process.pid, host: hostname(), service, since: new Date().toISOString() };
  const content = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = liveOwner(file);
      if (owner) throw lockedError(dataDir, service, owner);
      // Stale: moved aside first, so of two starters breaking it at once only one succeeds.
      const aside = `${file}.${process.pid}.stale`;
      try {
        renameSync(file, aside);
        rmSync(aside, { force: true });
      } catch {
        // Someone else broke it first; try again.
      }
      continue;
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return {
      file,
      release() {
        try {
          // Only our own lock: after a takeover (or a deleted directory) it is not ours to remove.
          if (readFileSync(file, 'utf8') === content) rmSync(file, { force: true });
        } catch {
          // Already gone.
        }
      },
    };
  }
  const owner = liveOwner(file);
  throw owner ? lockedError(dataDir, service, owner) : conflict('data_dir_locked', `cannot take ${file}: another instance is starting on the data directory ${dataDir}`);
}
