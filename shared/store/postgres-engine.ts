import { createHash } from 'node:crypto';
import type pg from 'pg';
import { TollgateError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { num, storeBusy, storeUnreachable, type Param, type Queryable, type Row, type RowSet, type SqlEngine, type TransactionKind } from './engine.js';
import type { ChangeTopic } from './types.js';

/** The channel every instance LISTENs on; the payload is the topic. */
export const CHANGE_CHANNEL = 'tollgate_changes';
/** Held while migrating, so that instances starting together apply each migration once. */
const MIGRATION_LOCK = 7_311_240_001;
/** Serialisation conflicts retried before the caller gets store_busy. */
const MAX_ATTEMPTS = 8;
/** PostgreSQL's limit is 65535 bind parameters per statement. */
const MAX_PARAMS = 60_000;
const TOPICS: ReadonlySet<string> = new Set<ChangeTopic>(['device_cas', 'signing_keys']);

export interface PostgresEngineOptions {
  /** Connections in the pool. */
  poolSize?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** How long to wait for a connection (ms). */
  connectTimeoutMs?: number;
  /** How long a statement waits for a lock another instance holds before giving up with store_busy (ms). */
  lockTimeoutMs?: number;
}

type PgError = Error & { code?: string };

function codeOf(e: unknown): string | undefined {
  return (e as PgError | null)?.code;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '53300']);

function isConnectionError(e: unknown): boolean {
  const code = codeOf(e);
  if (code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  const message = e instanceof Error ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message);
}

/** Errors of the driver and the network become 503-kind refusals; the database's own refusals pass. */
function mapError(e: unknown): unknown {
  if (e instanceof TollgateError) return e;
  if (isConnectionError(e)) return storeUnreachable(e instanceof Error ? e.message : String(e));
  const code = codeOf(e);
  if (code === '40001' || code === '40P01' || code === '55P03') return storeBusy();
  return e;
}

/** `?` placeholders, as the repositories write them, to PostgreSQL's `$n`. */
const translated = new Map<string, { text: string; name: string }>();
function translate(sql: string): { text: string; name: string } {
  let t = translated.get(sql);
  if (!t) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    t = { text, name: `tg_${createHash('sha256').update(text).digest('hex').slice(0, 24)}` };
    translated.set(sql, t);
  }
  return t;
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  const query = async (sql: string, params: readonly Param[] = []): Promise<pg.QueryResult<Row>> => {
    const { text, name } = translate(sql);
    try {
      // Named: each connection parses and plans a statement once, as SQLite's prepared statements.
      return await client.query<Row>({ name, text, values: params as Param[] });
    } catch (e) {
      throw mapError(e);
    }
  };
  return {
    get: async (sql, params) => (await query(sql, params)).rows[0],
    all: async (sql, params) => (await query(sql, params)).rows,
    run: async (sql, params) => (await query(sql, params)).rowCount ?? 0,
    async insertMany(table, columns, rows) {
      const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
      for (let start = 0; start < rows.length; start += perStatement) {
        const chunk = rows.slice(start, start + perStatement);
        let n = 0;
        const values = chunk.map(() => `(${columns.map(() => `$${++n}`).join(', ')})`).join(', ');
        try {
          await client.query(`INSERT INTO ${table}(${columns.join(', ')}) VALUES ${values}`, chunk.flat() as Param[]);
        } catch (e) {
          throw mapError(e);
        }
      }
    },
  };
}

/**
 * The networked engine: a pool of connections to one PostgreSQL database shared by every
 * instance. Write transactions are SERIALIZABLE and retried on a serialisation conflict, which
 * gives the repositories the guarantees SQLite's single writer gives them; changes are announced
 * with NOTIFY, delivered to every LISTENing instance when the transaction commits.
 */
export class PostgresEngine implements SqlEngine {
  readonly kind = 'postgres' as const;
  /** Set once the driver is loaded (at the start of `migrated`); every use awaits `migrated` first. */
  pool!: pg.Pool;
  private driver!: typeof pg;
  private readonly migrated: Promise<void>;
  private reads!: Queryable;
  private listener: ChangeListener | null = null;
  private closed = false;

  constructor(
    readonly url: string,
    options: PostgresEngineOptions = {},
  ) {
    this.migrated = this.start(options);
    // Reported to whoever waits on ready() or makes the first query; never unhandled.
    this.migrated.catch(() => undefined);
  }

  /**
   * Loads the driver (only processes that use PostgreSQL pay for loading it: the CLI on SQLite
   * starts faster), opens the pool and migrates.
   */
  private async start(options: PostgresEngineOptions): Promise<void> {
    this.driver = (await import('pg')).default;
    this.pool = new this.driver.Pool({
      connectionString: this.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: options.applicationName ?? 'tollgate',
      // SQLite's busy_timeout, here: a writer waits this long for another's lock, then gets store_busy.
      options: `-c lock_timeout=${options.lockTimeoutMs ?? 10_000}`,
    });
    // An idle connection the server drops must not crash the process: the pool replaces it.
    this.pool.on('error', () => undefined);
    this.reads = queryable(this.pool);
    await this.migrate();
  }

  ready(): Promise<void> {
    return this.migrated;
  }

  async get(sql: string, params?: readonly Param[]): Promise<Row | undefined> {
    await this.migrated;
    return this.reads.get(sql, params);
  }

  async all(sql: string, params?: readonly Param[]): Promise<Row[]> {
    await this.migrated;
    return this.reads.all(sql, params);
  }

  async run(sql: string, params?: readonly Param[]): Promise<number> {
    await this.migrated;
    return this.reads.run(sql, params);
  }

  async insertMany(table: string, columns: readonly string[], rows: readonly (readonly Param[])[]): Promise<void> {
    await this.transaction((tx) => tx.insertMany(table, columns, rows), 'append');
  }

  /**
   * SERIALIZABLE for updates. Inserts of new rows only (the group commit) run at READ COMMITTED:
   * they read nothing a concurrent transaction could change under them, and skip SSI's tracking.
   */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>, kind: TransactionKind = 'update'): Promise<T> {
    await this.migrated;
    const isolation = kind === 'append' ? 'READ COMMITTED' : 'SERIALIZABLE';
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      let broken: Error | undefined;
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        const result = await fn(queryable(client));
        await client.query('COMMIT');
        return result;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch (rollback) {
          broken = rollback as Error;
        }
        const code = codeOf(e);
        const retryable = code === '40001' || code === '40P01' || (e instanceof TollgateError && e.code === 'store_busy');
        if (retryable && attempt < MAX_ATTEMPTS && !broken) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
          continue;
        }
        throw mapError(e);
      } finally {
        client.release(broken);
      }
    }
  }

  /**
   * One statement for the whole batch: the inserts of all but the last table as data-modifying
   * WITH clauses of the last one's. A single statement is atomic without BEGIN and COMMIT, so a
   * group commit costs one round trip (and one WAL flush) instead of four. Batches beyond the
   * bind-parameter limit go in one transaction of several statements.
   */
  async insertAll(sets: readonly RowSet[]): Promise<void> {
    await this.migrated;
    const nonEmpty = sets.filter((s) => s.rows.length > 0);
    if (nonEmpty.length === 0) return;
    const params = nonEmpty.reduce((n, s) => n + s.rows.length * s.columns.length, 0);
    if (params > MAX_PARAMS) {
      await this.transaction(async (tx) => {
        for (const s of nonEmpty) await tx.insertMany(s.table, s.columns, s.rows);
      }, 'append');
      return;
    }
    const values: Param[] = [];
    const insert = (s: RowSet) => {
      const tuples = s.rows.map((row) => `(${row.map((v) => (values.push(v), `$${values.length}`)).join(', ')})`);
      return `INSERT INTO ${s.table}(${s.columns.join(', ')}) VALUES ${tuples.join(', ')}`;
    };
    const withs = nonEmpty.slice(0, -1).map((s, i) => `w${i} AS (${insert(s)} RETURNING 1)`);
    const last = insert(nonEmpty[nonEmpty.length - 1]!);
    try {
      await this.pool.query(withs.length > 0 ? `WITH ${withs.join(', ')} ${last}` : last, values);
    } catch (e) {
      throw mapError(e);
    }
  }

  async snapshot<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    await this.migrated;
    const client = await this.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        return await fn(queryable(client));
      } finally {
        await client.query('COMMIT');
      }
    } catch (e) {
      throw mapError(e);
    } finally {
      client.release();
    }
  }

  async continueIdentity(tx: Queryable, table: string, column: string): Promise<void> {
    await tx.get(`SELECT setval(pg_get_serial_sequence(?, ?), GREATEST((SELECT MAX(${column}) FROM ${table}), 1)) AS v`, [table, column]);
  }

  async announce(tx: Queryable, topic: ChangeTopic): Promise<void> {
    await tx.get('SELECT pg_notify(CAST(? AS TEXT), CAST(? AS TEXT))', [CHANGE_CHANNEL, topic]);
  }

  subscribe(onChange: (topic: ChangeTopic) => void, onReconnect: () => void): () => void {
    this.listener ??= new ChangeListener(this.url, this.migrated.then(() => this.driver));
    return this.listener.add(onChange, onReconnect);
  }

  async ifUnlocked<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    await this.migrated;
    const client = await this.connect();
    let locked = false;
    try {
      locked = (await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [name])).rows[0]?.locked === true;
      if (!locked) return undefined;
      return await fn();
    } catch (e) {
      throw mapError(e);
    } finally {
      let stuck: Error | undefined;
      if (locked) {
        // A connection that could not let go of the lock must not go back to the pool holding it.
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]).catch((e: Error) => (stuck = e));
      }
      client.release(stuck);
    }
  }

  isUniqueViolation(e: unknown): boolean {
    return codeOf(e) === '23505';
  }

  /** Readiness: one round trip; a lost server is `store_unreachable` (503), as for every statement. */
  async ping(): Promise<void> {
    await this.get('SELECT 1 AS one');
  }

  async schemaVersion(): Promise<number> {
    const r = await this.get('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
    return num(r?.v ?? 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listener?.close();
    await this.migrated.catch(() => undefined);
    await this.pool?.end();
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      throw mapError(e);
    }
  }

  private async migrate(): Promise<void> {
    const client = await this.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
        for (const m of MIGRATIONS) {
          if (applied.has(m.version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.postgres);
            await client.query('INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
            await client.query('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK');
            throw new Error(`migration ${m.version} (${m.name}) failed: ${(e as Error).message}`);
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } catch (e) {
      throw mapError(e);
    } finally {
      client.release();
    }
  }
}

/**
 * One connection per process that LISTENs for changes, reconnecting (with back-off) when it is
 * lost; after a reconnect every follower is told to re-read, since notifications sent meanwhile
 * are gone.
 */
class ChangeListener {
  private readonly followers = new Set<{ onChange: (topic: ChangeTopic) => void; onReconnect: () => void }>();
  private client: pg.Client | null = null;
  private stopped = false;
  private retryMs = 100;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly driver: Promise<typeof pg>,
  ) {
    void this.connect(false);
  }

  add(onChange: (topic: ChangeTopic) => void, onReconnect: () => void): () => void {
    const follower = { onChange, onReconnect };
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    void this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private async connect(reconnect: boolean): Promise<void> {
    if (this.stopped) return;
    let Client: typeof pg.Client;
    try {
      Client = (await this.driver).Client;
    } catch {
      return; // the store never started; its callers hear why
    }
    const client = new Client({ connectionString: this.url, application_name: 'tollgate-listen' });
    client.on('notification', (n) => {
      if (n.channel !== CHANGE_CHANNEL || n.payload === undefined || !TOPICS.has(n.payload)) return;
      for (const f of this.followers) f.onChange(n.payload as ChangeTopic);
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.stopped) {
      void client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = 100;
    if (reconnect) for (const f of this.followers) f.onReconnect();
  }

  private lost(client: pg.Client): void {
    if (this.stopped || this.timer) return;
    if (this.client === client) this.client = null;
    void client.end().catch(() => undefined);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect(true);
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(5_000, this.retryMs * 2);
  }
}
