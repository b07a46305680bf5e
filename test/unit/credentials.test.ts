import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { basicAuthorization, MAX_AUTHORIZATION_LENGTH, parseBasicAuthorization } from '../../authsvc/credentials.js';
import { newSecret } from '../../shared/secrets.js';

const b64 = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');

function reason(header: string | string[] | undefined): string | null {
  const r = parseBasicAuthorization(header);
  return r.ok ? null : r.reason;
}

describe('Basic credentials', () => {
  it('reads a well-formed header', () => {
    const { secret } = newSecret('device');
    const uuid = '3f2c8a52-6b1e-4c59-9a54-0e0f7d1c2b3a';
    const r = parseBasicAuthorization(basicAuthorization(uuid, secret));
    expect(r).toEqual({ ok: true, credentials: { username: uuid, password: secret } });
  });

  it('accepts the scheme in any case and extra spaces before the credentials', () => {
    expect(parseBasicAuthorization(`basic ${b64('a:b')}`).ok).toBe(true);
    expect(parseBasicAuthorization(`BASIC   ${b64('a:b')}`).ok).toBe(true);
  });

  it('reads UTF-8 usernames', () => {
    const r = parseBasicAuthorization(`Basic ${b64('jürgen:pw')}`);
    expect(r.ok && r.credentials.username).toBe('jürgen');
  });

  it('refuses a missing header', () => {
    expect(reason(undefined)).toBe('credentials_missing');
    expect(reason('')).toBe('credentials_missing');
    expect(reason([])).toBe('credentials_missing');
  });

  it('refuses other schemes', () => {
    expect(reason(`Bearer ${b64('a:b')}`)).toBe('auth_scheme_unsupported');
    expect(reason('Basicx YTpi')).toBe('auth_scheme_unsupported');
    expect(reason('Digest username="a"')).toBe('auth_scheme_unsupported');
  });

  it('refuses empty credentials after the scheme', () => {
    expect(reason('Basic')).toBe('credentials_malformed');
    expect(reason('Basic ')).toBe('credentials_malformed');
  });

  it('refuses credentials without a colon', () => {
    expect(reason(`Basic ${b64('justauser')}`)).toBe('credentials_malformed');
  });

  it('splits at the first colon: the password may contain colons, the user-id cannot (RFC 7617)', () => {
    const parsed = parseBasicAuthorization(`Basic ${b64('alice:pa:ss:word')}`);
    expect(parsed).toEqual({ ok: true, credentials: { username: 'alice', password: 'pa:ss:word' } });
  });

  it('refuses bad base64: wrong alphabet, missing padding, non-canonical bits, embedded spaces', () => {
    expect(reason('Basic YTpi*')).toBe('credentials_not_base64');
    expect(reason('Basic YTpiYw')).toBe('credentials_not_base64'); // "a:bc" without its padding
    expect(reason('Basic YTpiYx==')).toBe('credentials_not_base64'); // padding bits set
    expect(reason('Basic YTp iYw==')).toBe('credentials_not_base64');
    expect(reason(`Basic ${Buffer.from('a:b').toString('base64url')}_-`)).toBe('credentials_not_base64');
    expect(reason('Basic ====')).toBe('credentials_not_base64');
  });

  it('refuses oversized headers before decoding them', () => {
    const big = `Basic ${b64(`user:${'x'.repeat(MAX_AUTHORIZATION_LENGTH)}`)}`;
    expect(reason(big)).toBe('credentials_too_large');
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(reason(`Basic ${b64(Buffer.from([0x75, 0x3a, 0xff, 0xfe]))}`)).toBe('credentials_not_utf8');
    // An overlong encoding of "/" and a lone surrogate are not UTF-8 either.
    expect(reason(`Basic ${b64(Buffer.from([0x61, 0x3a, 0xc0, 0xaf]))}`)).toBe('credentials_not_utf8');
    expect(reason(`Basic ${b64(Buffer.from([0x61, 0x3a, 0xed, 0xa0, 0x80]))}`)).toBe('credentials_not_utf8');
  });

  it('refuses an empty username or password', () => {
    expect(reason(`Basic ${b64(':secret')}`)).toBe('username_empty');
    expect(reason(`Basic ${b64('user:')}`)).toBe('password_empty');
  });

  it('refuses control characters', () => {
    expect(reason(`Basic ${b64('us\ner:pw')}`)).toBe('credentials_malformed');
    expect(reason(`Basic ${b64('user:p\u0000w')}`)).toBe('credentials_malformed');
  });

  it('refuses two Authorization headers', () => {
    expect(reason([basicAuthorization('a', 'b'), basicAuthorization('c', 'd')])).toBe('credentials_malformed');
    expect(parseBasicAuthorization([basicAuthorization('a', 'b')]).ok).toBe(true);
  });

  it('round-trips any printable username and password without a colon', () => {
    const part = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes(':') && !/[\u0000-\u001f\u007f]/.test(s));
    fc.assert(
      fc.property(part, part, (u, p) => {
        const r = parseBasicAuthorization(basicAuthorization(u, p));
        expect(r).toEqual({ ok: true, credentials: { username: u, password: p } });
      }),
    );
  });

  it('never throws, whatever the header', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        expect(() => parseBasicAuthorization(s)).not.toThrow();
        expect(() => parseBasicAuthorization(`Basic ${s}`)).not.toThrow();
      }),
    );
  });
});
