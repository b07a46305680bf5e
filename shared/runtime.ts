import type { AuthorityDeps } from './authority/index.js';
import type { LoadedConfig } from './config.js';
import { KeyStore } from './keystore.js';
import { SqliteStore } from './store/index.js';

/**
 * Opens what every Tollgate process works on: the store and the key store, as configured. The
 * services create the database on first start; tools that only work on one pass `mustExist`.
 */
export function openAuthority(config: LoadedConfig, now: () => number = Date.now, options: { mustExist?: boolean } = {}): AuthorityDeps & { store: SqliteStore } {
  const store = new SqliteStore(config.databasePath, { ...options, synchronous: config.store.sqlite.synchronous });
  return {
    store,
    keys: new KeyStore(config.pkiDir),
    policy: {
      deviceCertDays: config.pki.deviceCertDays,
      testCertMaxHours: config.pki.testCertMaxHours,
      allowedKeyTypes: config.pki.allowedKeyTypes,
      deviceTokenTtlSeconds: config.gateway.tokenTtlSeconds,
    },
    now,
  };
}
