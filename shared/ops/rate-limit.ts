/**
 * Request limits: token buckets per key, and a growing block for addresses that keep presenting
 * bad credentials.
 *
 * Where the counters live is a LimitState. On one host (SQLite) they live in memory, per process:
 * the gateway and the realm are separate processes limiting separate endpoints, so each one's
 * counters are complete for what it guards, and the hot path pays no write. Several instances of
 * one service (PostgreSQL) share them in the database (shared/store/shared-limits.ts), one round
 * trip per request, so a device spreading its requests over every instance is limited as one.
 */

export interface BucketRule {
  /** Requests allowed at once. */
  burst: number;
  /** Refill rate. */
  perSecond: number;
}

export type Decision = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimitStore {
  /** Takes one request from `key`'s bucket under `rule`, or says how long until one is available. */
  take(key: string, rule: BucketRule, now: number): Decision;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Buckets in a Map, bounded: beyond `maxKeys` the least recently used key is dropped (a dropped key
 * starts again with a full bucket, which errs on the side of letting requests through).
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxKeys = 100_000) {}

  take(key: string, rule: BucketRule, now: number): Decision {
    const b = this.buckets.get(key);
    let tokens = rule.burst;
    if (b) {
      // A wall clock stepped back (an NTP correction) must not drain the bucket: without the floor
      // a step of an hour would refuse the device, and every device behind its address, for an hour.
      tokens = Math.min(rule.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * rule.perSecond);
      this.buckets.delete(key); // re-inserted below: Map order is the LRU order
    }
    if (tokens >= 1) {
      this.set(key, { tokens: tokens - 1, at: now });
      return { ok: true };
    }
    this.set(key, { tokens, at: now });
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / rule.perSecond)) };
  }

  private set(key: string, bucket: Bucket): void {
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }
}

export interface FailureRule {
  threshold: number;
  windowSeconds: number;
  blockSeconds: number;
  maxBlockSeconds: number;
}

interface FailureRecord {
  /** Failures counted in the current window. */
  count: number;
  windowStart: number;
  blockedUntil: number;
}

/**
 * Counts failed credentials per key. Once `threshold` failures fall within one window, each further
 * failure blocks the key for twice as long as the one before (blockSeconds, 2x, 4x ... up to
 * maxBlockSeconds). A success does not reset the count: a guesser with one valid credential must
 * not be able to launder its failures.
 */
export class FailureBackoff {
  private readonly records = new Map<string, FailureRecord>();

  constructor(
    private readonly rule: FailureRule,
    private readonly maxKeys = 100_000,
  ) {}

  /** Null when `key` may try; else the seconds it must wait. */
  blocked(key: string, now: number): number | null {
    const r = this.records.get(key);
    if (!r || r.blockedUntil <= now) return null;
    return Math.max(1, Math.ceil((r.blockedUntil - now) / 1000));
  }

  /** Records a failure; returns the block it caused in seconds (0 while under the threshold). */
  fail(key: string, now: number): number {
    let r = this.records.get(key);
    const windowMs = this.rule.windowSeconds * 1000;
    // The window restarts only once the key is quiet and unblocked: a block outlasting the window
    // must not wipe the count and let the next failure start over at the shortest block.
    if (!r || (now - r.windowStart > windowMs && r.blockedUntil <= now && now - r.blockedUntil > windowMs)) {
      r = { count: 0, windowStart: now, blockedUntil: 0 };
    }
    this.records.delete(key);
    r.count += 1;
    let block = 0;
    if (r.count >= this.rule.threshold) {
      const doublings = Math.min(30, r.count - this.rule.threshold);
      block = Math.min(this.rule.maxBlockSeconds, this.rule.blockSeconds * 2 ** doublings);
      r.blockedUntil = now + block * 1000;
    }
    this.records.set(key, r);
    if (this.records.size > this.maxKeys) {
      const oldest = this.records.keys().next();
      if (!oldest.done) this.records.delete(oldest.value);
    }
    return block;
  }
}

/** The keys one request is counted under (null: not counted under that kind). */
export interface LimitKeys {
  /** The source address, for the failure back-off. */
  backoff: string | null;
  subject: string | null;
  source: string | null;
}

/** Where limit counters live: this process's memory, or a store every instance shares. */
export interface LimitState {
  /** Back-off first (cheapest and the most telling), then the subject's bucket, then the source's. */
  check(keys: LimitKeys, rules: { subject: BucketRule; source: BucketRule }, now: number): Promise<LimitVerdict | null>;
  fail(key: string, rule: FailureRule, now: number): Promise<void>;
}

/** Counters in this process's memory (bounded maps): the single-host default, and the fastest. */
export class MemoryLimitState implements LimitState {
  private readonly buckets: RateLimitStore;
  private backoff: FailureBackoff | null = null;

  constructor(buckets: RateLimitStore = new MemoryRateLimitStore()) {
    this.buckets = buckets;
  }

  async check(keys: LimitKeys, rules: { subject: BucketRule; source: BucketRule }, now: number): Promise<LimitVerdict | null> {
    if (keys.backoff !== null && this.backoff) {
      const wait = this.backoff.blocked(keys.backoff, now);
      if (wait !== null) return { retryAfterSeconds: wait, reason: 'credentials_backoff' };
    }
    if (keys.subject !== null) {
      const d = this.buckets.take(keys.subject, rules.subject, now);
      if (!d.ok) return { retryAfterSeconds: d.retryAfterSeconds, reason: 'rate_limited' };
    }
    if (keys.source !== null) {
      const d = this.buckets.take(keys.source, rules.source, now);
      if (!d.ok) return { retryAfterSeconds: d.retryAfterSeconds, reason: 'rate_limited' };
    }
    return null;
  }

  async fail(key: string, rule: FailureRule, now: number): Promise<void> {
    this.backoff ??= new FailureBackoff(rule);
    this.backoff.fail(key, now);
  }
}

export interface LimitsConfig {
  enabled: boolean;
  perDevice: BucketRule;
  perSource: BucketRule;
  failures: FailureRule;
}

/** Why a request is held back, and for how long. */
export interface LimitVerdict {
  retryAfterSeconds: number;
  reason: 'credentials_backoff' | 'rate_limited';
}

export interface LimitRequest {
  source: string | null;
  /** The device or token the request claims to be, if it says (fingerprint, Basic username). */
  subject: string | null;
}

export interface RequestLimiterOptions {
  now?: () => number;
  state?: LimitState;
  /**
   * The endpoint's name in shared keys (`gateway`, `realm`): instances of one service count
   * together, the gateway and the realm apart, as they always did in separate processes.
   */
  scope?: string;
}

/** The checks of one endpoint: back-off first (cheapest and the most telling), then both buckets. */
export class RequestLimiter {
  private readonly now: () => number;
  private readonly state: LimitState;
  private readonly prefix: string;
  private readonly rules: { subject: BucketRule; source: BucketRule };

  constructor(
    private readonly config: LimitsConfig,
    options: RequestLimiterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.state = options.state ?? new MemoryLimitState();
    this.prefix = options.scope ? `${options.scope}:` : '';
    this.rules = { subject: config.perDevice, source: config.perSource };
  }

  /**
   * Null to let the request through; else the `Retry-After` seconds and a stable reason code. The
   * subject must be one the caller can vouch for (the gateway's: the fingerprint of a certificate
   * whose key the TLS handshake proved).
   */
  async check(r: LimitRequest): Promise<LimitVerdict | null> {
    if (!this.config.enabled) return null;
    const keys: LimitKeys = {
      backoff: r.source === null ? null : `${this.prefix}failures:${r.source}`,
      subject: r.subject === null ? null : `${this.prefix}subject:${r.subject}`,
      source: r.source === null ? null : `${this.prefix}source:${r.source}`,
    };
    return this.state.check(keys, this.rules, this.now());
  }

  /**
   * The source's limits only (its back-off, then its bucket), for a request whose subject is not
   * proved yet. The realm checks a subject only once its credentials have proved it (checkSubject):
   * a bucket taken from an unverified name would let anyone who knows a device's UUID spend that
   * device's requests.
   */
  checkSource(source: string | null): Promise<LimitVerdict | null> {
    return this.check({ source, subject: null });
  }

  /** The bucket of a subject whose credentials were verified. */
  async checkSubject(subject: string): Promise<LimitVerdict | null> {
    if (!this.config.enabled) return null;
    return this.state.check({ backoff: null, subject: `${this.prefix}subject:${subject}`, source: null }, this.rules, this.now());
  }

  /** Call when a request presented credentials that were refused, or was refused before they could be checked. */
  async failed(source: string | null): Promise<void> {
    if (!this.config.enabled || source === null) return;
    await this.state.fail(`${this.prefix}failures:${source}`, this.config.failures, this.now());
  }
}
