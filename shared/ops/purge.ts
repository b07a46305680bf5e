import { hostname } from 'node:os';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { SharedState } from '../store/shared-state.js';
import type { Store } from '../store/types.js';
import { appendAuditArchive } from './audit-archive.js';

/** Audit records deleted per transaction: small enough that other writers never wait long. */
export const AUDIT_PURGE_CHUNK = 5_000;
/** Chunks per run at most; a backlog beyond that (a first run on an old store) goes in later runs. */
export const AUDIT_PURGE_MAX_CHUNKS = 200;

const DAY_MS = 86_400_000;

/** Milliseconds of audit history to keep for a configured number of days; 0 keeps it forever. */
export function auditRetentionMs(days: number): number {
  return days > 0 ? days * DAY_MS : 0;
}

export interface PurgeRun {
  tokens: number;
  auditRecords: number;
}

/** The job's name in the store's maintenance table (and its advisory lock on PostgreSQL). */
export const MAINTENANCE_JOB = 'purge';

/**
 * Maintenance, once per `intervalMs` across every process sharing the store, whichever services
 * run: each schedules it, and the store lets exactly one run per interval (a row claimed in a
 * transaction, and on PostgreSQL an advisory lock held for the run, released if that process dies).
 * A run deletes expired tokens, then audit records older than the retention period, then what the
 * shared limits no longer need, and records itself in the audit trail.
 *
 * Expired tokens are already refused by every check; purging only keeps the table (and the
 * secret-hash index every realm request reads) small. Audit records go in bounded chunks, each its
 * own transaction that also records how many went and the cutoff, with the event loop free between
 * chunks. Returns a function that stops the schedule.
 */
export function schedulePurge(options: {
  store: Pick<Store, 'purgeExpiredTokens' | 'purgeAuditLog' | 'runExclusive' | 'appendAudit'>;
  intervalMs: number;
  /** Who runs it, for the audit record (e.g. `gateway@host:pid`). */
  instance?: string;
  /** Prunes shared limit counters and replay memory (PostgreSQL); resolves to how many entries went. */
  prune?: (now: number) => Promise<number>;
  /** How much audit history to keep (ms); 0 keeps it forever. */
  auditRetentionMs?: number;
  now: () => number;
  log: Logger;
  /** Told how many tokens each run deleted (tests, metrics). */
  onPurged?: (count: number) => void;
  /** Told what each run deleted, tokens and audit records. */
  onRun?: (run: PurgeRun) => void;
  /** Records per audit chunk (tests). */
  auditChunk?: number;
  /** Append what retention deletes to this file (NDJSON) first; unset: deleted records are gone. */
  auditArchiveFile?: string;
}): () => void {
  const { store, intervalMs, now, log, onPurged, onRun } = options;
  const retentionMs = options.auditRetentionMs ?? 0;
  const chunk = options.auditChunk ?? AUDIT_PURGE_CHUNK;
  const archiveFile = options.auditArchiveFile;
  const archive = archiveFile === undefined ? undefined : (records: Parameters<typeof appendAuditArchive>[1]) => appendAuditArchive(archiveFile, records);
  if (intervalMs <= 0) return () => {};
  let running = false;
  let stopped = false;

  const purgeAudit = async (): Promise<number> => {
    if (retentionMs <= 0) return 0;
    const cutoff = now() - retentionMs;
    let total = 0;
    for (let i = 0; i < AUDIT_PURGE_MAX_CHUNKS && !stopped; i++) {
      const step = await store.purgeAuditLog(
        cutoff,
        chunk,
        {
          actor: 'system',
          action: 'audit.purged',
          outcome: 'success',
          details: { retentionDays: Math.round((retentionMs / DAY_MS) * 1000) / 1000, ...(archiveFile !== undefined ? { archivedTo: archiveFile } : {}) },
        },
        archive,
      );
      total += step.deleted;
      if (!step.more) break;
      // Requests in between (SQLite is synchronous underneath).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return total;
  };

  const run = async (claimedAt: number): Promise<void> => {
    const started = now();
    let tokens = 0;
    try {
      tokens = await store.purgeExpiredTokens(now());
      if (tokens > 0) log.info({ count: tokens }, 'expired tokens purged');
      onPurged?.(tokens);
    } catch (e) {
      log.error({ err: e }, 'could not purge expired tokens');
    }
    let auditRecords = 0;
    try {
      auditRecords = await purgeAudit();
      if (auditRecords > 0) log.info({ count: auditRecords, retentionMs }, 'audit records past retention purged');
    } catch (e) {
      log.error({ err: e }, 'could not purge audit records past retention');
    }
    let pruned = 0;
    try {
      pruned = (await options.prune?.(started)) ?? 0;
    } catch (e) {
      log.error({ err: e }, 'could not prune shared limit state');
    }
    await store.appendAudit({
      actor: 'system',
      action: 'maintenance.ran',
      outcome: 'success',
      details: { instance: options.instance ?? null, startedAt: new Date(claimedAt).toISOString(), tokens, auditRecords, pruned, ms: now() - started },
    });
    onRun?.({ tokens, auditRecords });
  };

  // Looked at four times per interval: the store runs it once per interval, by whichever instance
  // asks first, so a stopped instance delays it by a quarter of an interval at most.
  const timer = setInterval(() => {
    // A slow run must not overlap the next one.
    if (running) return;
    running = true;
    void store
      .runExclusive(MAINTENANCE_JOB, intervalMs, run)
      .catch((e: unknown) => log.error({ err: e }, 'could not run maintenance'))
      .finally(() => {
        running = false;
      });
  }, Math.max(10, Math.floor(intervalMs / 4)));
  // The schedule alone must not keep a stopping process alive.
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * The maintenance schedule of a service, as configured. Every service schedules it (the store lets
 * one run per interval), so maintenance runs whichever services are up. Replay memory older than
 * the longest document age any configuration allows is pruned too.
 */
export function scheduleMaintenance(options: {
  config: Pick<Config, 'maintenance'>;
  store: Pick<Store, 'purgeExpiredTokens' | 'purgeAuditLog' | 'runExclusive' | 'appendAudit'>;
  shared: Pick<SharedState, 'prune'>;
  now: () => number;
  log: Logger;
  service: string;
}): () => void {
  const { config, store, shared, now, log, service } = options;
  return schedulePurge({
    store,
    intervalMs: config.maintenance.purgeIntervalSeconds * 1000,
    auditRetentionMs: auditRetentionMs(config.maintenance.auditRetentionDays),
    instance: `${service}@${hostname()}:${process.pid}`,
    prune: (at) => shared.prune(at, REPLAY_HORIZON_MS),
    ...(config.maintenance.auditArchiveFile !== undefined ? { auditArchiveFile: config.maintenance.auditArchiveFile } : {}),
    now,
    log,
  });
}

/** An AWS identity document older than this is refused as stale under any configuration (maxAgeSeconds ≤ 1 day). */
const REPLAY_HORIZON_MS = 2 * DAY_MS;
