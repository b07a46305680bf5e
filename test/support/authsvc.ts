import { afterAll } from 'vitest';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { createLogger } from '../../shared/log.js';
import type { Factory } from '../../shared/store/index.js';
import { createTestAuthority, type TestAuthority } from './store.js';

/** A realm on a real listener over a test authority with a signing key and the factory `acme`. */
export interface RunningRealm {
  t: TestAuthority;
  authsvc: RunningAuthsvc;
  factory: Factory;
}

/**
 * `start(config)` starts one (configuration overrides as the configuration file has them; without
 * a signing key if asked); all of them are closed after the file's tests.
 */
export function realmStarter(name: string): (config?: Record<string, unknown>, options?: { signingKey?: boolean }) => Promise<RunningRealm> {
  const log = createLogger(name, 'silent');
  const started: RunningRealm[] = [];
  afterAll(async () => {
    for (const r of started) {
      await r.authsvc.close().catch(() => undefined);
      r.t.cleanup();
    }
  });
  return async (config = {}, options = {}) => {
    const t = await createTestAuthority({ config });
    if (options.signingKey !== false) await t.signingKey();
    const factory = await t.factory('acme');
    const authsvc = await startAuthsvc({ config: t.config, deps: t.deps, log, keyringPollMs: 0 });
    const running = { t, authsvc, factory };
    started.push(running);
    return running;
  };
}
