import { invalidInput } from '../errors.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import type { SqlStore } from './sql-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';

/** Where a store lives: a SQLite file or a PostgreSQL database. */
export type StoreLocation = { type: 'sqlite'; path: string; synchronous?: 'NORMAL' | 'FULL' } | { type: 'postgres'; url: string; poolSize?: number };

/**
 * A store location from what an operator types: `postgres://…` / `postgresql://…`, `sqlite:PATH`
 * (or `sqlite://PATH`), or a bare file path.
 */
export function parseStoreUrl(text: string): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(text)) {
    try {
      new URL(text);
    } catch {
      throw invalidInput('store_url_invalid', 'the PostgreSQL URL is not a URL; expected e.g. postgres://tollgate@db.example.com/tollgate');
    }
    return { type: 'postgres', url: text };
  }
  const path = text.replace(/^sqlite:(\/\/)?/, '');
  if (path.length === 0 || /^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw invalidInput('store_url_invalid', `"${text}" is neither a postgres:// URL nor a SQLite file path`);
  }
  return { type: 'sqlite', path };
}

/** The location without any password, for logs and messages. */
export function describeStore(location: StoreLocation): string {
  if (location.type === 'sqlite') return `sqlite:${location.path}`;
  const url = new URL(location.url);
  url.password = '';
  return url.href;
}

export function openStore(location: StoreLocation, options: SqliteStoreOptions & PostgresStoreOptions = {}): SqlStore {
  return location.type === 'postgres'
    ? new PostgresStore(location.url, { ...options, ...(location.poolSize !== undefined ? { poolSize: location.poolSize } : {}) })
    : new SqliteStore(location.path, { ...options, ...(location.synchronous !== undefined ? { synchronous: location.synchronous } : {}) });
}
