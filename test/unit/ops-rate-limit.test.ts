import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { FailureBackoff, MemoryLimitState, MemoryRateLimitStore, RequestLimiter, type LimitState, type LimitsConfig } from '../../shared/ops/rate-limit.js';
import { PostgresStore } from '../../shared/store/index.js';
import { MemoryReplayMemory, PostgresLimitState, PostgresReplayMemory, type ReplayMemory } from '../../shared/store/shared-state.js';
import { createTestDatabase, dropTestDatabase, postgresAvailable } from '../support/postgres.js';

const defaults = (): LimitsConfig => loadConfig({ env: {} }).limits;

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/**
 * The limiter's behaviour, on each place its counters can live: this process's memory (one host)
 * and PostgreSQL (shared by every instance). The same arithmetic must come out of both.
 */
interface Backend {
  name: string;
  available: boolean;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  state(): LimitState;
  replay(): ReplayMemory;
}

let pgStore: PostgresStore | null = null;
let pgUrl = '';
const BACKENDS: Backend[] = [
  { name: 'memory', available: true, setup: async () => undefined, teardown: async () => undefined, state: () => new MemoryLimitState(), replay: () => new MemoryReplayMemory() },
  {
    name: 'postgres',
    available: postgresAvailable,
    async setup() {
      pgUrl = await createTestDatabase();
      pgStore = new PostgresStore(pgUrl, { poolSize: 4 });
      await pgStore.ready();
    },
    async teardown() {
      await pgStore?.close();
      await dropTestDatabase(pgUrl);
    },
    state: () => new PostgresLimitState(pgStore!.database),
    replay: () => new PostgresReplayMemory(pgStore!.database),
  },
];

// Only the backends installed here (in CI both: global setup fails without PostgreSQL).
describe.each(BACKENDS.filter((b) => b.available).map((b) => [b.name, b] as const))('request limits (%s)', (_name, backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());
  /** A limiter of its own (its own key scope, so tests sharing one database never meet). */
  const limiter = (config: LimitsConfig, now: () => number, state = backend.state(), scope = randomUUID()) => new RequestLimiter(config, { now, state, scope });

  it('lets a device pull 30 images at once with the default limits', async () => {
    const c = clock();
    const l = limiter(defaults(), c.now);
    for (let i = 0; i < 30; i++) {
      expect(await l.check({ source: '192.0.2.1', subject: 'device-a' }), `request ${i + 1}`).toBeNull();
    }
  });

  it('answers a device that keeps asking with a retry delay', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), perDevice: { burst: 5, perSecond: 1 } }, c.now);
    for (let i = 0; i < 5; i++) expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
    expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toEqual({ reason: 'rate_limited', retryAfterSeconds: 1 });
    c.advance(1000);
    expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
  });

  it('gives each device its own bucket', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), perDevice: { burst: 3, perSecond: 0.1 } }, c.now);
    for (let i = 0; i < 3; i++) await l.check({ source: '192.0.2.1', subject: 'device-a' });
    expect((await l.check({ source: '192.0.2.1', subject: 'device-a' }))?.reason).toBe('rate_limited');
    expect(await l.check({ source: '192.0.2.1', subject: 'device-b' })).toBeNull();
  });

  it('limits an address across devices', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), perSource: { burst: 4, perSecond: 0.5 } }, c.now);
    for (let i = 0; i < 4; i++) expect(await l.check({ source: '192.0.2.1', subject: `device-${i}` })).toBeNull();
    expect(await l.check({ source: '192.0.2.1', subject: 'device-9' })).toEqual({ reason: 'rate_limited', retryAfterSeconds: 2 });
    expect(await l.check({ source: '192.0.2.2', subject: 'device-9' })).toBeNull();
  });

  it('blocks an address after repeated failed credentials, longer each time', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), failures: { threshold: 3, windowSeconds: 60, blockSeconds: 2, maxBlockSeconds: 8 } }, c.now);
    const source = '198.51.100.9';
    await l.failed(source);
    await l.failed(source);
    expect(await l.check({ source, subject: null })).toBeNull();
    await l.failed(source); // the third failure: first block
    expect(await l.check({ source, subject: null })).toEqual({ reason: 'credentials_backoff', retryAfterSeconds: 2 });
    expect(await l.check({ source: '198.51.100.10', subject: null })).toBeNull();
    c.advance(2000);
    expect(await l.check({ source, subject: null })).toBeNull();
    await l.failed(source);
    expect((await l.check({ source, subject: null }))?.retryAfterSeconds).toBe(4);
    c.advance(4000);
    await l.failed(source);
    expect((await l.check({ source, subject: null }))?.retryAfterSeconds).toBe(8);
    c.advance(8000);
    await l.failed(source);
    expect((await l.check({ source, subject: null }))?.retryAfterSeconds).toBe(8); // capped
  });

  it('forgets failures once the window passed quietly', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), failures: { threshold: 2, windowSeconds: 10, blockSeconds: 1, maxBlockSeconds: 60 } }, c.now);
    await l.failed('a');
    c.advance(11_000);
    await l.failed('a');
    expect(await l.check({ source: 'a', subject: null })).toBeNull();
    await l.failed('a');
    expect((await l.check({ source: 'a', subject: null }))?.reason).toBe('credentials_backoff');
  });

  it('does nothing when disabled', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), enabled: false, perDevice: { burst: 1, perSecond: 0.001 } }, c.now);
    for (let i = 0; i < 100; i++) await l.failed('192.0.2.1');
    for (let i = 0; i < 5; i++) expect(await l.check({ source: '192.0.2.1', subject: 'd' })).toBeNull();
  });

  it('keeps serving after the wall clock stepped back an hour, and still limits', async () => {
    const c = clock();
    const l = limiter({ ...defaults(), perDevice: { burst: 3, perSecond: 1 } }, c.now);
    expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
    c.advance(-3_600_000);
    expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
    expect(await l.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
    expect((await l.check({ source: '192.0.2.1', subject: 'device-a' }))?.reason).toBe('rate_limited');
  });

  it(backend.name === 'postgres' ? 'limits a device as one across instances sharing the database' : 'keeps separate processes apart (counters are per process)', async () => {
    const c = clock();
    const scope = randomUUID();
    const config = { ...defaults(), perDevice: { burst: 4, perSecond: 0.01 } };
    // Two instances of one service: each has its own limiter and its own state object.
    const a = limiter(config, c.now, backend.state(), scope);
    const b = limiter(config, c.now, backend.state(), scope);
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await (i % 2 === 0 ? a : b).check({ source: `192.0.2.${i}`, subject: 'device-a' }));
    const letThrough = answers.filter((v) => v === null).length;
    expect(letThrough).toBe(backend.name === 'postgres' ? 4 : 8);
  });

  it('refuses an AWS identity document older than one already accepted for the instance, across instances where shared', async () => {
    const first = backend.replay();
    const second = backend.name === 'postgres' ? backend.replay() : first;
    const account = `aws:123456789012:i-${randomUUID().slice(0, 8)}`;
    expect(await first.accept(account, 2000, 3000)).toBe(true);
    expect(await second.accept(account, 2000, 3000)).toBe(true); // the same document again, still fresh
    expect(await second.accept(account, 1000, 3000)).toBe(false);
    expect(await first.accept(account, 2500, 3000)).toBe(true);
    expect(await first.accept(account, 2000, 3000)).toBe(false);
  });
});

describe('memory limit state', () => {
  it('forgets failures once the window passed quietly', () => {
    const c = clock();
    const backoff = new FailureBackoff({ threshold: 2, windowSeconds: 10, blockSeconds: 1, maxBlockSeconds: 60 });
    expect(backoff.fail('a', c.now())).toBe(0);
    c.advance(11_000);
    expect(backoff.fail('a', c.now())).toBe(0);
    expect(backoff.fail('a', c.now())).toBe(1);
  });

  it('keeps a bounded number of buckets', () => {
    const store = new MemoryRateLimitStore(2);
    const rule = { burst: 1, perSecond: 0.001 };
    expect(store.take('a', rule, 0).ok).toBe(true);
    expect(store.take('a', rule, 0).ok).toBe(false);
    store.take('b', rule, 0);
    store.take('c', rule, 0); // evicts a
    expect(store.take('a', rule, 0).ok).toBe(true);
  });
});
