import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { openStore, type SqlStore, type SqlStoreOptions, type StoreLocation } from '../../shared/store/index.js';
import { createTestDatabase, dropTestDatabase, postgresAvailable } from './postgres.js';

/**
 * Both store engines behind one harness, so a suite is written once and run against each: a real
 * SQLite file in a temporary directory, a real PostgreSQL database in the private cluster.
 */

/** SQL run beside the store, as another process (or an intruder with database access) would. */
export interface RawDatabase {
  run(sql: string, params?: unknown[]): Promise<void>;
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface EngineUnderTest {
  name: 'sqlite' | 'postgres';
  available: boolean;
  /** A new location: migrated already, or `empty` (no schema at all). */
  create(options?: { empty?: boolean }): Promise<StoreLocation>;
  open(location: StoreLocation, options?: SqlStoreOptions & { lockTimeoutMs?: number; busyTimeoutMs?: number }): SqlStore;
  raw(location: StoreLocation): Promise<RawDatabase>;
  /** Removes what create() made. */
  destroy(location: StoreLocation): Promise<void>;
}

function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

const sqlite: EngineUnderTest = {
  name: 'sqlite',
  available: true,
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-store-'));
    return { type: 'sqlite', path: join(dir, 'data', 'tollgate.db') };
  },
  open(location, options = {}) {
    return openStore(location, options);
  },
  async raw(location) {
    if (location.type !== 'sqlite') throw new Error('not a SQLite location');
    mkdirSync(dirname(location.path), { recursive: true });
    const db = new Database(location.path);
    return {
      async run(sql, params = []) {
        if (params.length === 0 && !sql.includes('?')) db.exec(sql);
        else db.prepare(sql).run(...params);
      },
      async all<T>(sql: string, params: unknown[] = []) {
        return db.prepare(sql).all(...params) as T[];
      },
      async close() {
        db.close();
      },
    };
  },
  async destroy(location) {
    if (location.type === 'sqlite') rmSync(join(location.path, '..', '..'), { recursive: true, force: true });
  },
};

const postgres: EngineUnderTest = {
  name: 'postgres',
  available: postgresAvailable,
  async create(options) {
    return { type: 'postgres', url: await createTestDatabase(options) };
  },
  open(location, options = {}) {
    if (location.type !== 'postgres') throw new Error('not a PostgreSQL location');
    return openStore({ ...location, poolSize: 4 }, options);
  },
  async raw(location) {
    if (location.type !== 'postgres') throw new Error('not a PostgreSQL location');
    const client = new pg.Client({ connectionString: location.url });
    await client.connect();
    return {
      async run(sql, params = []) {
        await client.query(numbered(sql), params);
      },
      async all<T>(sql: string, params: unknown[] = []) {
        return (await client.query(numbered(sql), params)).rows as T[];
      },
      async close() {
        await client.end();
      },
    };
  },
  async destroy(location) {
    if (location.type === 'postgres') await dropTestDatabase(location.url);
  },
};

export const ENGINES: readonly EngineUnderTest[] = [sqlite, postgres];

/**
 * The engines installed here, which the suites run on: in CI both (global setup fails without
 * PostgreSQL); elsewhere global setup says which one it leaves out and how to install it.
 */
export const INSTALLED_ENGINES: readonly EngineUnderTest[] = ENGINES.filter((e) => e.available);
