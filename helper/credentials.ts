import { CredentialCache, isFresh, isReusable, STALE_LOCK_MS, type CachedCredentials } from './cache.js';
import type { DeviceConfig } from './config.js';
import { noDebug, type Debug } from './debug.js';
import { GatewayError } from './errors.js';
import type { HubCreds } from './gateway-client.js';

/**
 * Cached credentials when some were fetched moments ago (REUSE_FOR_MS), else one gateway call
 * shared by every helper started at the same time: the first takes the lock and asks, the others
 * wait for its answer to land in the cache, or for its failure to be recorded next to it. Without
 * a usable cache directory every helper simply asks.
 *
 * Asking the gateway again every half minute of pulling is what keeps the helper truthful: a device
 * disabled or revoked hears why from the gateway (and its cached token, dead at the realm, is
 * dropped), and one enabled again gets a live token, without anyone erasing the cache. When the
 * gateway cannot be reached or is overloaded, the token held is handed out until it nears expiry,
 * as before, and the gateway is asked again every half minute.
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

/** The gateway could not be asked, or asked to come back later: not a verdict on the device. */
function gatewayDown(e: GatewayError): boolean {
  return e.code === 'gateway_unreachable' || e.code === 'gateway_timeout' || e.status === 429 || (e.status !== undefined && e.status >= 500);
}

export async function obtainCredentials(config: DeviceConfig, options: ObtainOptions): Promise<CachedCredentials> {
  const debug = options.debug ?? noDebug;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 50;
  const waitMs = options.waitMs ?? STALE_LOCK_MS + 1000;

  const cache = await CredentialCache.open(options.env, { gateway: config.gateway, fingerprint: config.certificate.fingerprint256 }, debug);
  if (!cache) return options.fetch(config);

  const fresh = async (): Promise<CachedCredentials | undefined> => {
    const entry = await cache.read();
    if (entry && isReusable(entry, now())) return entry;
    return undefined;
  };
  const fetchAndStore = async (): Promise<CachedCredentials> => {
    let creds: CachedCredentials;
    try {
      creds = await options.fetch(config);
    } catch (e) {
      if (e instanceof GatewayError) {
        const held = await cache.read();
        if (gatewayDown(e) && held && isFresh(held, now())) {
          debug(`gateway not answering (${e.code}); handing out the token held since ${Math.round((now() - held.fetchedAt) / 1000)} s`);
          // Stamped anew, so that helpers in the next half minute do not all wait on a gateway that is down.
          await cache.write(held, now());
          return held;
        }
        // A refused device's token is dead at the realm, or soon will be: never hand it out again.
        if (e.status === 401 || e.status === 403) await cache.remove();
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
