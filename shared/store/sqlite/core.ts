import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TollgateError } from '../../errors.js';
import { isDiskFull, StoreFileHealth } from '../file-health.js';
import { MIGRATIONS } from '../migrations.js';
import type { AuditEntry, ChangeTopic, ListOptions } from '../types.js';

/**
 * The SQLite engine's core: the connection, migrations, statements, transactions and the group
 * commit every aggregate's rows (factories.ts, cas.ts, devices.ts, tokens.ts, audit.ts, keys.ts)
 * are written through. One file in WAL mode, shared safely by the gateway, authsvc and the CLI
 * running as separate processes. Writes use IMMEDIATE transactions so that a writer takes the lock
 * up front and waits on busy_timeout, instead of failing half way on a lock upgrade.
 */

export type Row = Record<string, unknown>;

export const str = (v: unknown): string => v as string;
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));
export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

const DEFAULT_PAGE = 100;
// A page of at most 1000, plus one row that tells the caller whether another page follows.
const MAX_PAGE = 1001;

export function pageSize(options?: ListOptions): number {
  const n = options?.limit ?? DEFAULT_PAGE;
  return Math.max(1, Math.min(MAX_PAGE, Math.trunc(n)));
}

/** True for the SQLite errors that mean "another process holds the lock for too long". */
function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT';
}

export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export interface SqliteStoreOptions {
  /** How long a writer waits for another process's transaction before giving up (ms). */
  busyTimeoutMs?: number;
  /**
   * Refuse (store_missing) instead of creating the database when the file does not exist: for
   * tools that work on an existing store, so that one run from the wrong directory leaves nothing behind.
   */
  mustExist?: boolean;
  /** SQLite's `synchronous` (store.sqlite.synchronous): FULL flushes the WAL to disk at every commit. */
  synchronous?: 'NORMAL' | 'FULL';
}

/** Rows waiting for the next group commit (a token and/or an audit record), with the caller to tell. */
interface PendingWrite {
  /** Writes the rows; `at` is when the caller asked, the audit row's time whatever batch it lands in. */
  apply: (at: number) => void;
  at: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** The error a lock time-out becomes for callers: a 503-kind refusal, never a 500. */
function storeBusy(): TollgateError {
  return new TollgateError('unavailable', 'store_busy', 'the store is busy; retry shortly');
}

export class SqliteCore {
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  /**
   * Group commit: token inserts and audit appends (the per-request writes of the gateway and the
   * realm) made in one event-loop turn share one IMMEDIATE transaction, flushed on setImmediate.
   * Each caller's promise settles only after the commit that holds its rows, so no answer goes out
   * before its audit record is in the database. Any other write flushes the queue first, so writes
   * reach the file in the order they were asked for.
   */
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  /** The open file still at its path, and its disk not full (see file-health.ts). */
  private readonly health: StoreFileHealth;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    if (options.mustExist && path !== ':memory:' && !existsSync(path)) {
      throw new TollgateError('not_found', 'store_missing', `there is no Tollgate database at ${path}`);
    }
    if (path !== ':memory:') {
      const dir = dirname(path);
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const fresh = path === ':memory:' || !existsSync(path);
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 10_000 });
    if (fresh && path !== ':memory:') chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    // SQLite's default page cache is about 2 MiB. At fleet scale (millions of devices and tokens)
    // the interior pages of the token-hash and device indexes alone exceed it, and every lookup
    // then re-reads them from the OS. 64 MiB per connection keeps them resident.
    this.db.pragma('cache_size = -65536');
    this.migrate();
    this.health = new StoreFileHealth(path);
  }

  /** Schema version after migrations, for diagnostics and tests. */
  schemaVersion(): number {
    const r = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as Row;
    return num(r.v);
  }

  /** The connection's `synchronous` setting as SQLite reports it (1 NORMAL, 2 FULL), for diagnostics and tests. */
  synchronous(): 'NORMAL' | 'FULL' | 'OTHER' {
    const level = this.db.pragma('synchronous', { simple: true });
    return level === 1 ? 'NORMAL' : level === 2 ? 'FULL' : 'OTHER';
  }

  /** Runs `PRAGMA integrity_check`; returns 'ok' when the file is sound. */
  integrityCheck(): string {
    const rows = this.db.pragma('integrity_check') as Row[];
    return rows.map((r) => str(r.integrity_check)).join('; ');
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS) {
      this.db
        .transaction(() => {
          const done = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
          if (done) return;
          this.db.exec(m.sql);
          this.db
            .prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }

  /** A prepared statement, cached by its SQL. */
  stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` in an IMMEDIATE transaction, mapping lock time-outs to a 503-kind error. */
  write<T>(fn: () => T): T {
    if (this.pending.length > 0) this.flushPending();
    return this.transact(fn);
  }

  private transact<T>(fn: () => T): T {
    // Never write into a file that is no longer the one at the store's path: it would be lost.
    this.health.assertAttached();
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (e) {
      if (isBusy(e)) throw storeBusy();
      if (isDiskFull(e)) throw this.health.noteFull();
      throw e;
    }
    this.health.noteWritten();
    return result;
  }

  /** Queues rows for the next group commit; settles once they are committed (or refused). */
  enqueue(apply: (at: number) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ apply, at: Date.now(), resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate rather than a microtask: the batch then takes every request read in the same
        // poll phase, where a microtask would commit after each request's own synchronous chain.
        setImmediate(() => {
          this.flushScheduled = false;
          this.flushPending();
        });
      }
    });
  }

  /**
   * Commits every queued write in one transaction and settles their callers. If the batch fails,
   * each entry is retried in a transaction of its own, so one bad entry fails only its own caller;
   * a lock time-out fails the whole batch at once (each retry would wait as long again).
   */
  private flushPending(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.transact(() => {
        for (const w of batch) w.apply(w.at);
      });
    } catch (e) {
      // A lock time-out, a full disk or a lost file fails every entry alike: no retry one by one.
      if (batch.length === 1 || isBusy(e) || (e instanceof TollgateError && e.kind === 'unavailable')) {
        for (const w of batch) w.reject(e);
        return;
      }
      for (const w of batch) {
        try {
          this.transact(() => w.apply(w.at));
        } catch (one) {
          w.reject(one);
          continue;
        }
        w.resolve();
      }
      return;
    }
    for (const w of batch) w.resolve();
  }

  read<T>(fn: () => T): T {
    this.health.assertNotDetached();
    try {
      return fn();
    } catch (e) {
      if (isBusy(e)) throw storeBusy();
      throw e;
    }
  }

  /** Writes an audit row; inside the transaction of the change it describes. */
  audit(entry: AuditEntry, at: number = Date.now()): void {
    this.stmt(
      `INSERT INTO audit_log(at, actor, action, outcome, factory_id, target, reason, source, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      at,
      entry.actor,
      entry.action,
      entry.outcome,
      entry.factoryId ?? null,
      entry.target ?? null,
      entry.reason ?? null,
      entry.source ?? null,
      entry.details ? JSON.stringify(entry.details) : null,
    );
  }

  /** Tells other processes that `topic` changed (in the same transaction as the change). */
  bump(topic: ChangeTopic): void {
    this.stmt('UPDATE change_versions SET version = version + 1 WHERE topic = ?').run(topic);
  }

  async changeVersion(topic: ChangeTopic): Promise<number> {
    return this.read(
      () => num((this.stmt('SELECT version FROM change_versions WHERE topic = ?').get(topic) as Row | undefined)?.version ?? 0),
    );
  }

  /** Readiness: the file is still the one at the path, its disk has room, and it answers. */
  async ping(): Promise<void> {
    this.health.check();
    this.read(() => this.stmt('SELECT 1').get());
  }

  close(): void {
    // Writes already asked for are committed (or refused) before the file is let go.
    this.flushPending();
    this.db.close();
  }
}
