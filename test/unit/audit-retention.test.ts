import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { auditRetentionMs, schedulePurge, type PurgeRun } from '../../shared/ops/purge.js';
import { SqliteStore } from '../../shared/store/index.js';

/**
 * The scheduled purge with audit retention, on a real SQLite store: expired tokens and audit
 * records past retention go, in bounded chunks, each chunk recorded; retention 0 keeps everything.
 */

const DAY = 86_400_000;
let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-retention-'));
  path = join(dir, 'tollgate.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeAt(times: number[]): void {
  const raw = new Database(path);
  const insert = raw.prepare("INSERT INTO audit_log(at, actor, action, outcome) VALUES (?, 'operator', 'old', 'success')");
  for (const at of times) insert.run(at);
  raw.close();
}

/** Resolves with the next completed purge run. */
function runWatcher(): { onRun: (r: PurgeRun) => void; next: () => Promise<PurgeRun> } {
  let waiting: ((r: PurgeRun) => void) | null = null;
  return {
    onRun: (r) => {
      waiting?.(r);
      waiting = null;
    },
    next: () => new Promise<PurgeRun>((resolve) => (waiting = resolve)),
  };
}

describe('scheduled purge with audit retention', () => {
  it('defaults to 90 days of audit history, 0 meaning forever', () => {
    expect(loadConfig({ env: {}, cwd: dir }).maintenance.auditRetentionDays).toBe(90);
    expect(auditRetentionMs(90)).toBe(90 * DAY);
    expect(auditRetentionMs(0)).toBe(0);
  });

  it('deletes records past retention in chunks, each recorded with its count and cutoff, and keeps the rest', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([...Array.from({ length: 7 }, (_, i) => now - (40 - i) * DAY), now - 5 * DAY, now - DAY]);
    const watcher = runWatcher();
    const stop = schedulePurge({
      store,
      intervalMs: 20,
      auditRetentionMs: 30 * DAY,
      now: () => now,
      log: createLogger('test', 'silent'),
      auditChunk: 3,
      onRun: watcher.onRun,
    });
    const run = await watcher.next();
    stop();
    expect(run).toEqual({ tokens: 0, auditRecords: 7 });
    const left = await store.listAudit({ action: 'old' });
    expect(left.map((r) => Math.round((now - r.at) / DAY))).toEqual([5, 1]);
    const records = await store.listAudit({ action: 'audit.purged' });
    expect(records.map((r) => r.details?.deleted)).toEqual([3, 3, 1]);
    expect(records.every((r) => r.actor === 'system' && r.details?.cutoff === new Date(now - 30 * DAY).toISOString() && r.details.retentionDays === 30)).toBe(true);
    store.close();
  });

  it('keeps every audit record when retention is 0', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 4000 * DAY, now - DAY]);
    const watcher = runWatcher();
    const stop = schedulePurge({ store, intervalMs: 20, auditRetentionMs: 0, now: () => now, log: createLogger('test', 'silent'), onRun: watcher.onRun });
    expect(await watcher.next()).toEqual({ tokens: 0, auditRecords: 0 });
    stop();
    expect(await store.listAudit({ action: 'old' })).toHaveLength(2);
    expect(await store.auditRetentionCutoff()).toBe(0);
    store.close();
  });

  it('archives what it deletes to a file first, and deletes nothing when the archive cannot be written', async () => {
    const store = new SqliteStore(path);
    const now = Date.now();
    writeAt([now - 40 * DAY, now - 39 * DAY, now - 38 * DAY, now - DAY]);
    const archive = join(dir, 'audit-archive.ndjson');
    const watcher = runWatcher();
    const stop = schedulePurge({ store, intervalMs: 20, auditRetentionMs: 30 * DAY, now: () => now, log: createLogger('test', 'silent'), auditChunk: 2, auditArchiveFile: archive, onRun: watcher.onRun });
    expect(await watcher.next()).toEqual({ tokens: 0, auditRecords: 3 });
    stop();
    const lines = readFileSync(archive, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { id: number; at: string; action: string });
    expect(lines.map((l) => [l.action, Math.round((now - Date.parse(l.at)) / DAY)])).toEqual([['old', 40], ['old', 39], ['old', 38]]);
    expect(new Set(lines.map((l) => l.id)).size).toBe(3);
    expect(statSync(archive).mode & 0o777).toBe(0o600);
    const purged = await store.listAudit({ action: 'audit.purged' });
    expect(purged.every((r) => r.details?.archivedTo === archive)).toBe(true);

    // An archive that cannot be written (a directory in its place): the records stay.
    writeAt([now - 50 * DAY]);
    const broken = join(dir, 'not-a-file');
    mkdirSync(broken);
    const failing = runWatcher();
    const stop2 = schedulePurge({ store, intervalMs: 20, auditRetentionMs: 30 * DAY, now: () => now, log: createLogger('test', 'silent'), auditArchiveFile: broken, onRun: failing.onRun });
    expect(await failing.next()).toEqual({ tokens: 0, auditRecords: 0 });
    stop2();
    expect((await store.listAudit({ action: 'old' })).map((r) => Math.round((now - r.at) / DAY))).toEqual([1, 50]);
    store.close();
  });
});
