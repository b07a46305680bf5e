import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, hashSecret, newSecret, secretKind } from '../../shared/secrets.js';

describe('secrets', () => {
  it('have a recognisable prefix, 256 random bits and a checksum', () => {
    for (const kind of ['device', 'api', 'refresh'] as const) {
      const { secret, secretHash } = newSecret(kind);
      expect(secret).toMatch(/^tg[dar]_[A-Za-z0-9_-]{49}$/);
      expect(secretKind(secret)).toBe(kind);
      expect(secretHash).toBe(hashSecret(secret));
      expect(secretHash).not.toContain(secret.slice(4, 20));
    }
  });

  it('are never equal', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newSecret('device').secret));
    expect(seen.size).toBe(1000);
  });

  it('reject a single changed character by checksum', () => {
    const { secret } = newSecret('api');
    const i = 10;
    const changed = secret.slice(0, i) + (secret[i] === 'A' ? 'B' : 'A') + secret.slice(i + 1);
    expect(secretKind(changed)).toBeNull();
  });

  it('never classify arbitrary strings as secrets', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        expect(secretKind(s)).toBeNull();
      }),
    );
  });

  it('compare in constant time and correctly', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});
