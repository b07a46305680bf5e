import { CredentialCache, isFresh, STALE_LOCK_MS, type CachedCredentials } from './cache.js';
import type { DeviceConfig } from './config.js';
import { noDebug, type Debug } from './debug.js';
import { GatewayError } from './errors.js';
import type { HubCreds } from './gateway-client.js';

/**
 * Cached credentials when there are fresh ones, else one gateway call shared by every helper
 * started at the same time: the first takes the lock and asks, the others wait for its answer to
 * land in the cache, or for its failure to be recorded next to it. Without a usable cache
 * directory every helper simply asks.
 */

export interface ObtainOptions {
  env: NodeJS.ProcessEnv;
  fetch: (config: DeviceConfig) => Promise<HubCreds>;
  now?: () => number;
  debug?: Debug;
  /** How often waiters look at the cache. */
  pollMs?: number;
  /** How long a waiter waits for another helper before giving up; past STALE_LOCK_MS, so a dead holder's lock is broken first. */
  waitMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function obtainCredentials(config: DeviceConfig, options: ObtainOptions): Promise<CachedCredentials> {
  const debug = options.debug ?? noDebug;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 50;
  const waitMs = options.waitMs ?? STALE_LOCK_MS + 1000;

  const cache = await CredentialCache.open(options.env, { gateway: config.gateway, fingerprint: config.certificate.fingerprint256 }, debug);
  if (!cache) return options.fetch(config);

  const fresh = async (): Promise<CachedCredentials | undefined> => {
    const entry = await cache.read();
    if (entry && isFresh(entry, now())) return entry;
    return undefined;
  };
  const fetchAndStore = async (): Promise<CachedCredentials> => {
    let creds: CachedCredentials;
    try {
      creds = await options.fetch(config);
    } catch (e) {
      if (e instanceof GatewayError) {
        await cache.recordFailure({ code: e.code, message: e.message, at: Date.now(), ...(e.status !== undefined ? { status: e.status } : {}) });
      }
      throw e;
    }
    await cache.clearFailure();
    if (isFresh(creds, now())) await cache.write(creds, now());
    else debug('token lifetime is within the expiry margin: not cached');
    return creds;
  };
  /**
   * A gateway failure that happened while this helper waited is its answer too: asking again at
   * once would only repeat it (and, for a refused device, repeat it once per waiting helper).
   */
  const failedMeanwhile = async (since: number): Promise<GatewayError | undefined> => {
    const failure = await cache.lastFailure();
    if (!failure || failure.at < since) return undefined;
    debug(`the helper holding the lock failed (${failure.code}); reporting its error`);
    return new GatewayError(failure.code, failure.message, failure.status);
  };

  const cached = await fresh();
  if (cached) {
    debug(`using cached token (expires in ${Math.round((cached.expiresAt - now()) / 1000)} s)`);
    return cached;
  }

  const startedAt = Date.now();
  const giveUpAt = startedAt + waitMs;
  let waiting = false;
  for (;;) {
    let lock: Awaited<ReturnType<CredentialCache['tryLock']>>;
    try {
      lock = await cache.tryLock();
    } catch (e) {
      debug(`cannot lock ${cache.lockFile} (${(e as NodeJS.ErrnoException).code ?? String(e)}); asking the gateway without it`);
      return fetchAndStore();
    }
    if (lock !== 'busy') {
      try {
        // Another helper may have refreshed the cache between our first look and the lock.
        const refreshed = await fresh();
        if (refreshed) {
          debug('another helper refreshed the cache meanwhile');
          return refreshed;
        }
        const failure = waiting ? await failedMeanwhile(startedAt) : undefined;
        if (failure) throw failure;
        return await fetchAndStore();
      } finally {
        await lock.release();
      }
    }

    if (!waiting) debug(`another helper holds ${cache.lockFile}; waiting for its token`);
    waiting = true;
    if (await cache.breakStaleLock()) continue;
    if (Date.now() >= giveUpAt) {
      throw new GatewayError(
        'gateway_timeout',
        `gave up after ${Math.round(waitMs / 1000)} s waiting for another docker-credential-tollgate to get a token from ${config.gateway} (lock ${cache.lockFile})`,
      );
    }
    await sleep(pollMs);
    const landed = await fresh();
    if (landed) {
      debug('token fetched by another helper');
      return landed;
    }
    const failure = await failedMeanwhile(startedAt);
    if (failure) throw failure;
  }
}
