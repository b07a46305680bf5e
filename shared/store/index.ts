export * from './types.js';
export { SqlStore } from './sql-store.js';
export type { SqlStoreOptions } from './sql-store.js';
export { SqliteStore } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export { PostgresStore } from './postgres.js';
export type { PostgresStoreOptions } from './postgres.js';
export { openStore, describeStore, parseStoreUrl, type StoreLocation } from './open.js';
