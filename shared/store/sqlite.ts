import type { Store } from './types.js';
import { auditRows } from './sqlite/audit.js';
import { caRows } from './sqlite/cas.js';
import { consoleCodeRows } from './sqlite/console.js';
import { SqliteCore, type SqliteStoreOptions } from './sqlite/core.js';
import { deviceRows } from './sqlite/devices.js';
import { factoryRows } from './sqlite/factories.js';
import { signingKeyRows } from './sqlite/keys.js';
import { tokenRows } from './sqlite/tokens.js';

export type { SqliteStoreOptions } from './sqlite/core.js';

/**
 * The embedded store: SQLite (sqlite/core.ts: connection, migrations, transactions, group commit)
 * with one module per aggregate: factories, CAs, devices, tokens, the audit trail, signing keys,
 * console sign-in codes.
 * Each mutation writes its audit record in the same transaction as the change.
 */
// The class gets the Store methods from the aggregate modules in its constructor; this declaration
// tells the type checker so (and the object below is checked to be a whole Store).
export interface SqliteStore extends Store {}

export class SqliteStore {
  private readonly core: SqliteCore;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    const core = new SqliteCore(path, options);
    this.core = core;
    const methods: Store = {
      ...factoryRows(core),
      ...caRows(core),
      ...deviceRows(core),
      ...tokenRows(core),
      ...auditRows(core),
      ...consoleCodeRows(core),
      ...signingKeyRows(core),
      changeVersion: (topic) => core.changeVersion(topic),
      ping: () => core.ping(),
      close: () => core.close(),
    };
    Object.assign(this, methods);
  }

  /** Schema version after migrations, for diagnostics and tests. */
  schemaVersion(): number {
    return this.core.schemaVersion();
  }

  /** How commits reach the disk (store.sqlite.synchronous), as the connection runs it. */
  synchronous(): 'NORMAL' | 'FULL' | 'OTHER' {
    return this.core.synchronous();
  }

  /** Runs `PRAGMA integrity_check`; returns 'ok' when the file is sound. */
  integrityCheck(): string {
    return this.core.integrityCheck();
  }
}
