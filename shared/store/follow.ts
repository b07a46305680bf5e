import type { ChangeTopic, Store } from './types.js';

/** With a change feed, polling is only the safety net for a notification lost with a connection. */
export const SAFETY_POLL_MS = 30_000;

export interface FollowOptions {
  store: Pick<Store, 'changeVersion' | 'subscribeChanges'>;
  topic: ChangeTopic;
  /** The version the follower's current state was built from (read before building it). */
  builtFrom: number;
  /** How often to poll the change version without a feed (SQLite); 0: never. */
  pollMs: number;
  /** Rebuilds the follower's state; resolves once it did. */
  onChange: () => Promise<void>;
  onError: (e: unknown) => void;
}

/**
 * Keeps a process's copy of something the store holds (the device CA set, the signing keys) in
 * step with changes other processes make: at once through the engine's change feed (PostgreSQL
 * LISTEN/NOTIFY), else by polling the topic's change version, which is cheap. Every trigger reads
 * the version and rebuilds only if it moved, so a notification and a poll landing together cost
 * one rebuild. Returns a function that stops following.
 */
export function followChanges({ store, topic, builtFrom, pollMs, onChange, onError }: FollowOptions): () => void {
  let last = builtFrom;
  let running: Promise<void> | null = null;
  let again = false;
  const check = (): void => {
    if (running) {
      // A change landing during a rebuild is looked at once that one is done.
      again = true;
      return;
    }
    running = (async () => {
      try {
        const v = await store.changeVersion(topic);
        if (v !== last) {
          await onChange();
          last = v;
        }
      } catch (e) {
        onError(e);
      }
    })().finally(() => {
      running = null;
      if (again) {
        again = false;
        check();
      }
    });
  };
  const unsubscribe = store.subscribeChanges((t) => {
    if (t === topic) check();
  }, check);
  const every = unsubscribe ? Math.max(pollMs, SAFETY_POLL_MS) : pollMs;
  const timer = every > 0 ? setInterval(check, every) : null;
  timer?.unref();
  return () => {
    unsubscribe?.();
    if (timer) clearInterval(timer);
  };
}
