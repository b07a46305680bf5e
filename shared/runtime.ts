import type { AuthorityDeps } from './authority/index.js';
import type { LoadedConfig } from './config.js';
import { loadKek } from './kek.js';
import { FileKeyStore, type KeyStore } from './keystore.js';
import { SealedKeyStore } from './sealed-keystore.js';
import { openStore, type SqlStore, type StoreLocation } from './store/index.js';

/** The configured store's location. */
export function storeLocation(config: LoadedConfig): StoreLocation {
  return config.store.type === 'postgres'
    ? { type: 'postgres', url: config.store.url!, poolSize: config.store.poolSize }
    : { type: 'sqlite', path: config.databasePath, synchronous: config.store.sqlite.synchronous };
}

/** Private keys as configured: sealed in the database with a key-encryption key, or files under pkiDir. */
export function openKeyStore(config: LoadedConfig, store: SqlStore, now: () => number = Date.now): KeyStore {
  const { keyEncryptionKeyFile, previousKeyEncryptionKeyFiles } = config.store;
  if (keyEncryptionKeyFile === undefined) return new FileKeyStore(config.pkiDir);
  return new SealedKeyStore(store, loadKek(keyEncryptionKeyFile), previousKeyEncryptionKeyFiles.map(loadKek), now);
}

/**
 * How a long-running service opens its store (`serve`, `up`, and the benchmarks' servers, which
 * measure what they run): it answers requests while it writes, so its WAL checkpoints run in a
 * worker thread beside the event loop (store/sqlite-checkpointer.ts).
 */
export const SERVICE_STORE = { backgroundCheckpoints: true } as const;

/**
 * Opens what every Tollgate process works on: the store and the key store, as configured. The
 * services create the database on first start; tools that only work on one pass `mustExist`. A
 * PostgreSQL store connects and migrates in the background; `await deps.store.ready()` to know.
 */
export function openAuthority(
  config: LoadedConfig,
  now: () => number = Date.now,
  options: { mustExist?: boolean; backgroundCheckpoints?: boolean } = {},
): AuthorityDeps & { store: SqlStore } {
  const store = openStore(storeLocation(config), { now, ...options });
  let keys: KeyStore;
  try {
    keys = openKeyStore(config, store, now);
  } catch (e) {
    void store.close();
    throw e;
  }
  return {
    store,
    keys,
    policy: {
      deviceCertDays: config.pki.deviceCertDays,
      testCertMaxHours: config.pki.testCertMaxHours,
      allowedKeyTypes: config.pki.allowedKeyTypes,
      deviceTokenTtlSeconds: config.gateway.tokenTtlSeconds,
    },
    now,
  };
}
