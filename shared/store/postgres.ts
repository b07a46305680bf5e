import { PostgresEngine, type PostgresEngineOptions } from './postgres-engine.js';
import { SqlStore, type SqlStoreOptions } from './sql-store.js';

export type PostgresStoreOptions = PostgresEngineOptions & SqlStoreOptions;

/** The store on a PostgreSQL database: several gateway and realm instances share it. */
export class PostgresStore extends SqlStore {
  declare readonly database: PostgresEngine;

  constructor(url: string, options: PostgresStoreOptions = {}) {
    super(new PostgresEngine(url, options), options);
  }
}
