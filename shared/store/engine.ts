/**
 * The database core both engines implement: statements, transactions, migrations and change
 * notification. The repositories (one per aggregate) are written once against it, in the SQL both
 * engines speak (`?` placeholders, `ON CONFLICT`, `CAST(? AS TEXT)` where a type must be named),
 * so a behaviour of the store is the same code on SQLite and on PostgreSQL.
 */
import { TollgateError } from '../errors.js';
import type { ChangeTopic } from './types.js';

export type Row = Record<string, unknown>;
export type Param = string | number | null;

/** Statements, inside a transaction or outside one. */
export interface Queryable {
  get(sql: string, params?: readonly Param[]): Promise<Row | undefined>;
  all(sql: string, params?: readonly Param[]): Promise<Row[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
  /** Inserts rows of one shape: one multi-row statement on PostgreSQL, one prepared statement looped on SQLite. */
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly Param[])[]): Promise<void>;
}

export type EngineKind = 'sqlite' | 'postgres';

/** New rows for one table, as the group commit hands them over. */
export interface RowSet {
  table: string;
  columns: readonly string[];
  rows: readonly (readonly Param[])[];
}

/**
 * `update` (the default): serialisable, for anything that reads and then writes. `append`: only
 * inserts of new rows (the group commit), which a networked engine may run at a weaker isolation.
 */
export type TransactionKind = 'update' | 'append';

export interface SqlEngine extends Queryable {
  readonly kind: EngineKind;
  /** Resolves once connected and migrated; rejects with what stopped it. */
  ready(): Promise<void>;
  /**
   * Runs `fn` in one serialisable write transaction: all of it is committed or none. `fn` may be
   * run again after a serialisation conflict (PostgreSQL), so it must only touch the database.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, kind?: TransactionKind): Promise<T>;
  /** Runs `fn`'s reads against one consistent snapshot (a read-only transaction), whatever commits meanwhile. */
  snapshot<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** After rows were inserted with explicit ids (a copy), makes new ids continue after the highest. */
  continueIdentity(tx: Queryable, table: string, column: string): Promise<void>;
  /** Inserts every row set, all or none (the group commit's write): as few round trips as the engine allows. */
  insertAll(sets: readonly RowSet[]): Promise<void>;
  /** Tells other processes, once the transaction commits, that `topic` changed (PostgreSQL NOTIFY). */
  announce(tx: Queryable, topic: ChangeTopic): Promise<void>;
  /**
   * Calls `onChange` when another process announces a change, and `onReconnect` when the feed was
   * lost and is back (changes may have been missed). Null when the engine has no such feed, and
   * followers must poll.
   */
  subscribe(onChange: (topic: ChangeTopic) => void, onReconnect: () => void): (() => void) | null;
  /**
   * Runs `fn` only if no other process holds the lock `name` (PostgreSQL: a session advisory lock,
   * released if the process dies); resolves to undefined when another holds it. SQLite has no
   * such lock and runs `fn`: its callers exclude each other through a row (see runExclusive).
   */
  ifUnlocked<T>(name: string, fn: () => Promise<T>): Promise<T | undefined>;
  isUniqueViolation(e: unknown): boolean;
  /**
   * Readiness: throws an `unavailable` TollgateError naming the fault (SQLite: its file deleted or
   * replaced, its disk full; PostgreSQL: the server unreachable), else answers one statement.
   */
  ping(): Promise<void>;
  /** The highest migration applied. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

/** The error a lock or serialisation time-out becomes for callers: a 503-kind refusal, never a 500. */
export function storeBusy(): TollgateError {
  return new TollgateError('unavailable', 'store_busy', 'the store is busy; retry shortly');
}

/** The error a lost database connection becomes: 503, so load balancers and clients retry elsewhere. */
export function storeUnreachable(why: string): TollgateError {
  return new TollgateError('unavailable', 'store_unreachable', `the store cannot be reached: ${why}`);
}

export const str = (v: unknown): string => v as string;
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));
/** PostgreSQL hands BIGINT columns over as strings; SQLite as numbers. Both become numbers. */
export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
