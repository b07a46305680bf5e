import { SqlStore, type SqlStoreOptions } from './sql-store.js';
import { SqliteEngine, type SqliteEngineOptions } from './sqlite-engine.js';

export type SqliteStoreOptions = SqliteEngineOptions & SqlStoreOptions;

/** The store on one SQLite file: the embedded default, for one host. */
export class SqliteStore extends SqlStore {
  declare readonly database: SqliteEngine;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    super(new SqliteEngine(path, options), options);
  }

  /** How commits reach the disk (store.sqlite.synchronous), as the connection runs it. */
  synchronous(): 'NORMAL' | 'FULL' | 'OTHER' {
    return this.database.synchronous();
  }

  /** Runs `PRAGMA integrity_check`; returns 'ok' when the file is sound. */
  integrityCheck(): string {
    return this.database.integrityCheck();
  }
}
