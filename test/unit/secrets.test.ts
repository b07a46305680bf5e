import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, hashSecret, newSecret, newTokenId, sameSecret, secretKind } from '../../shared/secrets.js';

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
    expect(constantTimeEqual('', '')).toBe(true);
    // Length in bytes, not characters: 'é' is two bytes in UTF-8.
    expect(constantTimeEqual('é', 'e\u0301')).toBe(false);
    expect(constantTimeEqual('aé', 'aé')).toBe(true);
  });

  it('compare secrets without telling their length', () => {
    expect(sameSecret('s3cr3t', 's3cr3t')).toBe(true);
    expect(sameSecret('s3cr3t', 's3cr3T')).toBe(false);
    expect(sameSecret('s3cr3t', 's3cr3t!')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
    expect(sameSecret('', 'x')).toBe(false);
  });

  it('token ids: tok_ and 16 characters, distinct within one millisecond, sorting by the time they were made', () => {
    const sameMs = Array.from({ length: 1000 }, () => newTokenId(1_700_000_000_000));
    for (const id of sameMs) expect(id).toMatch(/^tok_[A-Za-z0-9_-]{16}$/);
    expect(new Set(sameMs).size).toBe(1000);
    expect(new Set(sameMs.map((id) => id.slice(0, 12))).size).toBe(1);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 1, max: 2 ** 40 }), (earlier, gap) => {
        const [a, b] = [newTokenId(earlier), newTokenId(earlier + gap)];
        // SQLite compares text byte by byte, as < does here.
        expect(a < b).toBe(true);
      }),
    );
  });
});
