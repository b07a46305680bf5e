import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TollgateError } from '../errors.js';
import { isDiskFull, StoreFileHealth } from './file-health.js';
import { shareCheckpointer, type CheckpointerLease } from './sqlite-checkpointer.js';
import { MIGRATIONS } from './migrations.js';
import { num, storeBusy, type Param, type Queryable, type Row, type RowSet, type SqlEngine } from './engine.js';

/**
 * A transaction awaits between its statements, so two connections of one process to one file must
 * not interleave theirs: the second's BEGIN IMMEDIATE would wait synchronously on busy_timeout,
 * blocking the event loop the first needs to reach its COMMIT. Every engine of a process on the
 * same file takes its turn in one queue; other processes are kept out by the file lock as before.
 */
const WRITE_QUEUES = new Map<string | symbol, { tail: Promise<void>; users: number }>();

/** How long after opening a service's store its background checkpoints start (sqlite-checkpointer.ts). */
const CHECKPOINTER_DELAY_MS = 1000;

/** SQLite's default `wal_autocheckpoint`. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

/** True for the SQLite errors that mean "another process holds the lock for too long". */
function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT';
}

function mapBusy<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isBusy(e)) throw storeBusy();
    throw e;
  }
}

export interface SqliteEngineOptions {
  /** How long a writer waits for another process's transaction before giving up (ms). */
  busyTimeoutMs?: number;
  /**
   * Refuse (store_missing) instead of creating the database when the file does not exist: for
   * tools that work on an existing store, so that one run from the wrong directory leaves nothing behind.
   */
  mustExist?: boolean;
  /** SQLite's `synchronous` (store.sqlite.synchronous): FULL flushes the WAL to disk at every commit. */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Checkpoint the WAL in a worker thread instead of inside the commit that fills it
   * (sqlite-checkpointer.ts): for the services, which answer requests while they write.
   */
  backgroundCheckpoints?: boolean;
}

/** Prepared statements of one connection, by SQL text. */
class Statements {
  private readonly cache = new Map<string, Database.Statement>();
  constructor(readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  queryable(): Queryable {
    return {
      get: async (sql, params = []) => mapBusy(() => this.get(sql).get(...params) as Row | undefined),
      all: async (sql, params = []) => mapBusy(() => this.get(sql).all(...params) as Row[]),
      run: async (sql, params = []) => mapBusy(() => this.get(sql).run(...params).changes),
      insertMany: async (table, columns, rows) => {
        const stmt = this.get(`INSERT INTO ${table}(${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
        mapBusy(() => {
          for (const row of rows) stmt.run(...(row as Param[]));
        });
      },
    };
  }
}

/**
 * The embedded engine: one SQLite file in WAL mode, shared safely by the gateway, authsvc and the
 * CLI running as separate processes. Two connections: writes go through one, in IMMEDIATE
 * transactions taken one at a time (a writer takes the file lock up front and waits on
 * busy_timeout instead of failing half way on a lock upgrade); reads go through the other, so a
 * read never sees what a transaction still open on the writer has not committed.
 */
export class SqliteEngine implements SqlEngine {
  readonly kind = 'sqlite' as const;
  private readonly writer: Database.Database;
  private readonly reader: Database.Database;
  private readonly writes: Statements;
  private readonly reads: Queryable;
  private readonly tx: Queryable;
  /** Transactions of this process on this file, one after the other (see WRITE_QUEUES). */
  private readonly queue: { tail: Promise<void>; users: number };
  /** The open file still at its path, and its disk not full (see file-health.ts). */
  private readonly health: StoreFileHealth;
  private checkpointer: CheckpointerLease | null = null;
  private checkpointerStart: NodeJS.Timeout | null = null;

  constructor(
    readonly path: string,
    options: SqliteEngineOptions = {},
  ) {
    const memory = path === ':memory:';
    if (options.mustExist && !memory && !existsSync(path)) {
      throw new TollgateError('not_found', 'store_missing', `there is no Tollgate database at ${path}`);
    }
    if (!memory) {
      const dir = dirname(path);
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const fresh = memory || !existsSync(path);
    const timeout = options.busyTimeoutMs ?? 10_000;
    this.writer = new Database(path, { timeout });
    if (fresh && !memory) chmodSync(path, 0o600);
    this.writer.pragma('journal_mode = WAL');
    this.writer.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    this.writer.pragma('foreign_keys = ON');
    tuneCache(this.writer);
    this.migrate();
    this.health = new StoreFileHealth(path);
    if (options.backgroundCheckpoints && !memory) {
      // Off the start-up path: a service listens first; until then its commits checkpoint as usual.
      this.checkpointerStart = setTimeout(() => this.startCheckpointer(timeout), CHECKPOINTER_DELAY_MS);
      this.checkpointerStart.unref();
    }
    this.reader = memory ? this.writer : new Database(path, { timeout, readonly: true });
    if (this.reader !== this.writer) tuneCache(this.reader);
    this.writes = new Statements(this.writer);
    this.tx = this.writes.queryable();
    this.reads = new Statements(this.reader).queryable();
    const key = memory ? Symbol('memory') : resolve(path);
    this.queueKey = key;
    this.queue = WRITE_QUEUES.get(key) ?? { tail: Promise.resolve(), users: 0 };
    this.queue.users++;
    WRITE_QUEUES.set(key, this.queue);
  }

  private readonly queueKey: string | symbol;

  private startCheckpointer(busyTimeoutMs: number): void {
    this.checkpointerStart = null;
    this.writer.pragma('wal_autocheckpoint = 0');
    this.checkpointer = shareCheckpointer(resolve(this.path), {
      busyTimeoutMs,
      // Without the worker, the commits checkpoint again, as SQLite does by default.
      onLost: () => {
        if (this.writer.open) this.writer.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
      },
    });
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  get(sql: string, params?: readonly Param[]): Promise<Row | undefined> {
    this.health.assertNotDetached();
    return this.reads.get(sql, params);
  }

  all(sql: string, params?: readonly Param[]): Promise<Row[]> {
    this.health.assertNotDetached();
    return this.reads.all(sql, params);
  }

  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.transaction((tx) => tx.run(sql, params));
  }

  insertMany(table: string, columns: readonly string[], rows: readonly (readonly Param[])[]): Promise<void> {
    return this.transaction((tx) => tx.insertMany(table, columns, rows));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const previous = this.queue.tail;
    let release!: () => void;
    this.queue.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      // Never write into a file that is no longer the one at the store's path: it would be lost.
      this.health.assertAttached();
      mapBusy(() => this.writer.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this.tx);
        mapBusy(() => this.writer.exec('COMMIT'));
        this.health.noteWritten();
        return result;
      } catch (e) {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        if (isDiskFull(e)) throw this.health.noteFull();
        throw e;
      }
    } finally {
      release();
    }
  }

  async snapshot<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    // A read transaction on the reader connection holds one WAL snapshot until it ends.
    this.reader.exec('BEGIN');
    try {
      return await fn(this.reads);
    } finally {
      this.reader.exec('COMMIT');
    }
  }

  async continueIdentity(): Promise<void> {
    // AUTOINCREMENT already continues after the highest id inserted.
  }

  insertAll(sets: readonly RowSet[]): Promise<void> {
    return this.transaction(async (tx) => {
      for (const set of sets) if (set.rows.length > 0) await tx.insertMany(set.table, set.columns, set.rows);
    });
  }

  async announce(): Promise<void> {
    // Followers poll change_versions; nothing to send.
  }

  subscribe(): null {
    return null;
  }

  ifUnlocked<T>(_name: string, fn: () => Promise<T>): Promise<T | undefined> {
    return fn();
  }

  isUniqueViolation(e: unknown): boolean {
    const code = (e as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  }

  async schemaVersion(): Promise<number> {
    return num((this.writer.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as Row).v);
  }

  async ping(): Promise<void> {
    this.health.check();
    await this.get('SELECT 1 AS one');
  }

  /** The connection's `synchronous` setting as SQLite reports it (1 NORMAL, 2 FULL). */
  synchronous(): 'NORMAL' | 'FULL' | 'OTHER' {
    const level = this.writer.pragma('synchronous', { simple: true });
    return level === 1 ? 'NORMAL' : level === 2 ? 'FULL' : 'OTHER';
  }

  /** Runs `PRAGMA integrity_check`; returns 'ok' when the file is sound. */
  integrityCheck(): string {
    const rows = this.writer.pragma('integrity_check') as Row[];
    return rows.map((r) => String(r.integrity_check)).join('; ');
  }

  async close(): Promise<void> {
    // Transactions already started finish first.
    await this.queue.tail;
    if (--this.queue.users === 0) WRITE_QUEUES.delete(this.queueKey);
    if (this.checkpointerStart) clearTimeout(this.checkpointerStart);
    await this.checkpointer?.release();
    if (this.reader !== this.writer) this.reader.close();
    this.writer.close();
  }

  private migrate(): void {
    this.writer.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS) {
      this.writer
        .transaction(() => {
          const done = this.writer.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
          if (done) return;
          this.writer.exec(m.sqlite);
          this.writer.prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }
}

/**
 * SQLite's default page cache is about 2 MiB. At fleet scale (millions of devices and tokens) the
 * interior pages of the token-hash and device indexes alone exceed it, and every lookup then
 * re-reads them from the OS. 64 MiB per connection keeps them resident.
 */
function tuneCache(db: Database.Database): void {
  db.pragma('cache_size = -65536');
}
