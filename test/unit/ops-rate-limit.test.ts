import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { FailureBackoff, MemoryRateLimitStore, RequestLimiter, type LimitsConfig } from '../../shared/ops/rate-limit.js';

const defaults = (): LimitsConfig => loadConfig({ env: {} }).limits;

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('request limits', () => {
  it('lets a device pull 30 images at once with the default limits', () => {
    const c = clock();
    const limiter = new RequestLimiter(defaults(), c.now);
    for (let i = 0; i < 30; i++) {
      expect(limiter.check({ source: '192.0.2.1', subject: 'device-a' }), `request ${i + 1}`).toBeNull();
    }
  });

  it('answers a device that keeps asking with a retry delay', () => {
    const c = clock();
    const limiter = new RequestLimiter({ ...defaults(), perDevice: { burst: 5, perSecond: 1 } }, c.now);
    for (let i = 0; i < 5; i++) expect(limiter.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
    const refused = limiter.check({ source: '192.0.2.1', subject: 'device-a' });
    expect(refused).toEqual({ reason: 'rate_limited', retryAfterSeconds: 1 });
    c.advance(1000);
    expect(limiter.check({ source: '192.0.2.1', subject: 'device-a' })).toBeNull();
  });

  it('gives each device its own bucket', () => {
    const c = clock();
    const limiter = new RequestLimiter({ ...defaults(), perDevice: { burst: 3, perSecond: 0.1 } }, c.now);
    for (let i = 0; i < 3; i++) limiter.check({ source: '192.0.2.1', subject: 'device-a' });
    expect(limiter.check({ source: '192.0.2.1', subject: 'device-a' })?.reason).toBe('rate_limited');
    expect(limiter.check({ source: '192.0.2.1', subject: 'device-b' })).toBeNull();
  });

  it('limits an address across devices', () => {
    const c = clock();
    const limiter = new RequestLimiter({ ...defaults(), perSource: { burst: 4, perSecond: 0.5 } }, c.now);
    for (let i = 0; i < 4; i++) expect(limiter.check({ source: '192.0.2.1', subject: `device-${i}` })).toBeNull();
    const refused = limiter.check({ source: '192.0.2.1', subject: 'device-9' });
    expect(refused).toEqual({ reason: 'rate_limited', retryAfterSeconds: 2 });
    expect(limiter.check({ source: '192.0.2.2', subject: 'device-9' })).toBeNull();
  });

  it('blocks an address after repeated failed credentials, longer each time', () => {
    const c = clock();
    const limiter = new RequestLimiter(
      { ...defaults(), failures: { threshold: 3, windowSeconds: 60, blockSeconds: 2, maxBlockSeconds: 8 } },
      c.now,
    );
    const source = '198.51.100.9';
    limiter.failed(source);
    limiter.failed(source);
    expect(limiter.check({ source, subject: null })).toBeNull();
    limiter.failed(source); // the third failure: first block
    expect(limiter.check({ source, subject: null })).toEqual({ reason: 'credentials_backoff', retryAfterSeconds: 2 });
    expect(limiter.check({ source: '198.51.100.10', subject: null })).toBeNull();
    c.advance(2000);
    expect(limiter.check({ source, subject: null })).toBeNull();
    limiter.failed(source);
    expect(limiter.check({ source, subject: null })?.retryAfterSeconds).toBe(4);
    c.advance(4000);
    limiter.failed(source);
    expect(limiter.check({ source, subject: null })?.retryAfterSeconds).toBe(8);
    c.advance(8000);
    limiter.failed(source);
    expect(limiter.check({ source, subject: null })?.retryAfterSeconds).toBe(8); // capped
  });

  it('forgets failures once the window passed quietly', () => {
    const c = clock();
    const backoff = new FailureBackoff({ threshold: 2, windowSeconds: 10, blockSeconds: 1, maxBlockSeconds: 60 });
    expect(backoff.fail('a', c.now())).toBe(0);
    c.advance(11_000);
    expect(backoff.fail('a', c.now())).toBe(0);
    expect(backoff.fail('a', c.now())).toBe(1);
  });

  it('does nothing when disabled', () => {
    const c = clock();
    const limiter = new RequestLimiter({ ...defaults(), enabled: false, perDevice: { burst: 1, perSecond: 0.001 } }, c.now);
    for (let i = 0; i < 100; i++) limiter.failed('192.0.2.1');
    for (let i = 0; i < 5; i++) expect(limiter.check({ source: '192.0.2.1', subject: 'd' })).toBeNull();
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
