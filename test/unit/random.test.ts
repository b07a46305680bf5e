import { describe, expect, it } from 'vitest';
import { randomBytesFromPool } from '../../shared/random.js';

describe('random bytes from the pool', () => {
  it('the size asked, never handed out twice, across refills of the pool', () => {
    const seen = new Set<string>();
    // 3,000 draws of 7, 16 and 33 bytes (about 55 KiB) refill the 4 KiB pool 13 times; the odd sizes make draws meet its end.
    for (let i = 0; i < 3000; i++) {
      const size = i % 3 === 0 ? 16 : i % 3 === 1 ? 7 : 33;
      const bytes = randomBytesFromPool(size);
      expect(bytes.length).toBe(size);
      seen.add(bytes.toString('hex'));
    }
    expect(seen.size).toBe(3000);
    // Each caller owns its copy: writing into one does not show in the next.
    const a = randomBytesFromPool(32);
    a.fill(0);
    expect(randomBytesFromPool(32).equals(Buffer.alloc(32))).toBe(false);
    expect(() => randomBytesFromPool(4097)).toThrow(RangeError);
  });
});
