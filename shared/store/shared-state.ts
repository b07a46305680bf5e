/**
 * What several instances of one service must share beyond the store's records: request-limit
 * counters and the AWS identity replay memory. On PostgreSQL they live in the database (the
 * limiter in unlogged tables, one function call per request); on SQLite, in each process's memory
 * as before, since one host runs one instance of each service and the hot path should pay no write.
 */
import type { Store } from './types.js';
import { MemoryLimitState, type BucketRule, type FailureRule, type LimitKeys, type LimitState, type LimitVerdict } from '../ops/rate-limit.js';
import type { Queryable } from './engine.js';
import { PostgresStore } from './postgres.js';

/** The newest signingTime accepted per AWS instance: an older document for it is a replay. */
export interface ReplayMemory {
  /** Records `signingTime` for `account` unless a newer one was accepted before; false for a replay. */
  accept(account: string, signingTime: number, now: number): Promise<boolean>;
}

/** Bounded, per process: the least recently seen instances are forgotten first. */
export class MemoryReplayMemory implements ReplayMemory {
  private readonly newest = new Map<string, number>();

  constructor(private readonly maxEntries = 10_000) {}

  async accept(account: string, signingTime: number): Promise<boolean> {
    const newest = this.newest.get(account);
    if (newest !== undefined && signingTime < newest) return false;
    this.newest.delete(account);
    this.newest.set(account, Math.max(signingTime, newest ?? signingTime));
    if (this.newest.size > this.maxEntries) {
      const oldest = this.newest.keys().next();
      if (!oldest.done) this.newest.delete(oldest.value);
    }
    return true;
  }
}

/** Limits every instance shares: the arithmetic of MemoryLimitState, in tollgate_limit() (migration 10). */
export class PostgresLimitState implements LimitState {
  constructor(private readonly db: Queryable) {}

  async check(keys: LimitKeys, rules: { subject: BucketRule; source: BucketRule }, now: number): Promise<LimitVerdict | null> {
    const r = await this.db.get(
      'SELECT reason, retry_after FROM tollgate_limit(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), ?, ?, ?, ?)',
      [keys.backoff, keys.subject, keys.source, Math.trunc(now), rules.subject.burst, rules.subject.perSecond, rules.source.burst, rules.source.perSecond],
    );
    if (!r || r.reason === null || r.reason === undefined) return null;
    return { reason: r.reason as LimitVerdict['reason'], retryAfterSeconds: Number(r.retry_after) };
  }

  async fail(key: string, rule: FailureRule, now: number): Promise<void> {
    await this.db.get('SELECT tollgate_fail(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS INTEGER), CAST(? AS BIGINT), ?, ?) AS block', [
      key,
      Math.trunc(now),
      rule.threshold,
      rule.windowSeconds * 1000,
      rule.blockSeconds,
      rule.maxBlockSeconds,
    ]);
  }
}

/** Replay memory every realm instance shares; the check and the update are one statement. */
export class PostgresReplayMemory implements ReplayMemory {
  constructor(private readonly db: Queryable) {}

  async accept(account: string, signingTime: number, now: number): Promise<boolean> {
    const r = await this.db.get(
      `INSERT INTO aws_replay AS r(account, newest, seen_at) VALUES (?, CAST(? AS BIGINT), CAST(? AS BIGINT))
       ON CONFLICT (account) DO UPDATE SET newest = EXCLUDED.newest, seen_at = EXCLUDED.seen_at
         WHERE r.newest <= EXCLUDED.newest
       RETURNING 1 AS accepted`,
      [account, Math.trunc(signingTime), Math.trunc(now)],
    );
    return r !== undefined;
  }
}

export interface SharedState {
  limits: LimitState;
  replay: ReplayMemory;
  /** Forgets what no longer matters (idle buckets, old replay entries); run by the maintenance job. */
  prune(now: number, replayHorizonMs: number): Promise<number>;
}

/** How long an idle bucket or back-off record is kept: long enough to have refilled or expired under any rule. */
const IDLE_MS = 86_400_000;

/** The shared state that fits the store: in the database on PostgreSQL, in memory on SQLite. */
export function sharedStateFor(store: Store): SharedState {
  if (store instanceof PostgresStore) {
    const db = store.database;
    return {
      limits: new PostgresLimitState(db),
      replay: new PostgresReplayMemory(db),
      async prune(now, replayHorizonMs) {
        let n = await db.run('DELETE FROM rate_limit_buckets WHERE at < ?', [now - IDLE_MS]);
        n += await db.run('DELETE FROM failure_backoff WHERE window_start < ? AND blocked_until < ?', [now - IDLE_MS, now - IDLE_MS]);
        n += await db.run('DELETE FROM aws_replay WHERE newest < ?', [now - replayHorizonMs]);
        return n;
      },
    };
  }
  return { limits: new MemoryLimitState(), replay: new MemoryReplayMemory(), prune: async () => 0 };
}
