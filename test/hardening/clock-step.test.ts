import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { RequestLimiter } from '../../shared/ops/rate-limit.js';

/**
 * Wall clocks step: an NTP correction can move the time back by minutes or hours. The request
 * limits of the gateway and the realm must keep letting honest clients through when it does.
 */

describe('request limits when the wall clock steps back', () => {
  it('keeps serving a device and its address after the clock went back an hour', async () => {
    let now = 1_700_000_000_000;
    const limiter = new RequestLimiter(loadConfig({ env: {} }).limits, { now: () => now });
    const request = { source: '192.0.2.1', subject: 'device-a' };
    expect(await limiter.check(request)).toBeNull();
    now -= 3_600_000;
    expect(await limiter.check(request)).toBeNull();
    expect(await limiter.check({ source: '192.0.2.1', subject: 'device-b' })).toBeNull();
  });

  it('still limits a device that keeps asking after the step (control: the limiter is on)', async () => {
    let now = 1_700_000_000_000;
    const limiter = new RequestLimiter({ ...loadConfig({ env: {} }).limits, perDevice: { burst: 3, perSecond: 1 } }, { now: () => now });
    const request = { source: '192.0.2.1', subject: 'device-a' };
    now -= 3_600_000;
    for (let i = 0; i < 3; i++) expect(await limiter.check(request)).toBeNull();
    expect((await limiter.check(request))?.reason).toBe('rate_limited');
  });
});
