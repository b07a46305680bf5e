import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';

/**
 * Deletes expired tokens every `intervalMs`. Expired tokens are already refused by every check;
 * purging only keeps the table (and the secret-hash index every realm request reads) small.
 * Returns a function that stops the schedule.
 */
export function schedulePurge(options: {
  store: Pick<Store, 'purgeExpiredTokens'>;
  intervalMs: number;
  now: () => number;
  log: Logger;
  /** Told how many tokens each run deleted (tests, metrics). */
  onPurged?: (count: number) => void;
}): () => void {
  const { store, intervalMs, now, log, onPurged } = options;
  if (intervalMs <= 0) return () => {};
  let running = false;
  const timer = setInterval(() => {
    // A slow run must not overlap the next one.
    if (running) return;
    running = true;
    store.purgeExpiredTokens(now()).then(
      (count) => {
        running = false;
        if (count > 0) log.info({ count }, 'expired tokens purged');
        onPurged?.(count);
      },
      (e: unknown) => {
        running = false;
        log.error({ err: e }, 'could not purge expired tokens');
      },
    );
  }, intervalMs);
  // The schedule alone must not keep a stopping process alive.
  timer.unref();
  return () => clearInterval(timer);
}
