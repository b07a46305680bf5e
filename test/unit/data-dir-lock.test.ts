import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertUnlocked, lockDataDir, lockFileOf } from '../../shared/data-dir-lock.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lock-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The pid of a process that has exited (the kernel does not hand it out again this quickly). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function writeLock(dir: string, service: string, pid: number, host = hostname()): void {
  writeFileSync(lockFileOf(dir, service), JSON.stringify({ pid, host, service, since: '2026-01-01T00:00:00.000Z' }));
}

describe('the data directory lock', () => {
  it('is taken once per service, names its owner, and is released by its owner only', () => {
    const dir = dataDir();
    const lock = lockDataDir(dir, 'gateway');
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, service: 'gateway' });
    // Another service on the same directory is fine: the gateway and the realm share one.
    const realm = lockDataDir(dir, 'authsvc');
    realm.release();
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
  });

  it('refuses while a live process holds it, naming the directory', async () => {
    const dir = dataDir();
    const holder = spawn('sleep', ['30']);
    try {
      writeLock(dir, 'gateway', holder.pid!);
      expect(() => lockDataDir(dir, 'gateway')).toThrow(new RegExp(`another tollgate gateway \\(pid ${holder.pid}, since 2026-01-01T00:00:00.000Z\\) is running on the data directory ${dir}`));
      expect(() => assertUnlocked(dir, ['authsvc', 'gateway'])).toThrow(/data directory/);
      // A lock from another host (a shared volume) is honoured: its process cannot be checked here.
      writeLock(dir, 'authsvc', 1, 'elsewhere.example');
      expect(() => lockDataDir(dir, 'authsvc')).toThrow(/pid 1 on elsewhere\.example/);
    } finally {
      holder.kill();
    }
  });

  it('takes over a stale lock left by a process that died', () => {
    const dir = dataDir();
    writeLock(dir, 'gateway', deadPid());
    expect(() => assertUnlocked(dir, ['gateway'])).not.toThrow();
    const lock = lockDataDir(dir, 'gateway');
    expect(JSON.parse(readFileSync(lock.file, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a damaged lock file, and leaves a lock taken over by another alone on release', () => {
    const dir = dataDir();
    writeFileSync(lockFileOf(dir, 'gateway'), 'not json');
    const lock = lockDataDir(dir, 'gateway');
    writeLock(dir, 'gateway', 4_000_000);
    lock.release();
    expect(existsSync(lock.file)).toBe(true);
  });
});
