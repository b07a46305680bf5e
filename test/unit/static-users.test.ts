import { describe, expect, it } from 'vitest';
import { createStaticUserAuthenticator, hashPassword, verifyPassword } from '../../authsvc/authn/static-users.js';
import { staticUserSchema } from '../../shared/config-accounts.js';

const context = { now: Date.now(), source: '127.0.0.1', service: 'tollgate-registry' };

describe('static users', async () => {
  const argonHash = await hashPassword('correct horse', 'argon2id');
  const bcryptHash = await hashPassword('battery staple', 'bcrypt');
  const users = {
    alice: { password: argonHash, labels: { team: ['acme'] } },
    bob: { password: bcryptHash, labels: {} },
  };

  it('hashes with argon2id or bcrypt, and the hashes pass the configuration schema', () => {
    expect(argonHash).toMatch(/^\$argon2id\$/);
    expect(bcryptHash).toMatch(/^\$2b\$10\$/);
    expect(staticUserSchema.safeParse({ password: argonHash }).success).toBe(true);
    expect(staticUserSchema.safeParse({ password: bcryptHash }).success).toBe(true);
    expect(staticUserSchema.safeParse({ password: 'correct horse' }).success).toBe(false);
  });

  it('verifies both kinds and treats an unreadable hash as a mismatch', async () => {
    expect(await verifyPassword(argonHash, 'correct horse')).toBe(true);
    expect(await verifyPassword(argonHash, 'correct horsE')).toBe(false);
    expect(await verifyPassword(bcryptHash, 'battery staple')).toBe(true);
    expect(await verifyPassword(bcryptHash, 'battery')).toBe(false);
    expect(await verifyPassword('$argon2id$garbage', 'x')).toBe(false);
  });

  it('accepts the right password with the user\'s labels', async () => {
    const auth = createStaticUserAuthenticator(users, { refuseUnknown: true });
    expect(await auth.authenticate({ username: 'alice', password: 'correct horse' }, context)).toEqual({
      decision: 'accept',
      principal: { origin: 'user', account: 'alice', labels: { team: ['acme'] } },
    });
    expect((await auth.authenticate({ username: 'bob', password: 'battery staple' }, context)).decision).toBe('accept');
  });

  it('refuses a wrong password and an unknown user with the same reason', async () => {
    const auth = createStaticUserAuthenticator(users, { refuseUnknown: true });
    const wrong = await auth.authenticate({ username: 'alice', password: 'battery staple' }, context);
    const unknown = await auth.authenticate({ username: 'mallory', password: 'correct horse' }, context);
    expect(wrong).toMatchObject({ decision: 'refuse', reason: 'password_invalid', account: 'alice' });
    expect(unknown).toMatchObject({ decision: 'refuse', reason: 'password_invalid', account: 'mallory' });
    expect(JSON.stringify([wrong, unknown])).not.toContain('correct horse');
  });

  it('passes unknown users on when an authentication hook follows, and still accepts the right password', async () => {
    const auth = createStaticUserAuthenticator(users, { refuseUnknown: false });
    expect(await auth.authenticate({ username: 'mallory', password: 'x' }, context)).toEqual({ decision: 'pass' });
    expect((await auth.authenticate({ username: 'alice', password: 'correct horse' }, context)).decision).toBe('accept');
  });

  it('does not look user names up on the object prototype', async () => {
    const auth = createStaticUserAuthenticator(users, { refuseUnknown: false });
    for (const username of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(await auth.authenticate({ username, password: 'x' }, context)).toEqual({ decision: 'pass' });
    }
  });

  it('refuses passwords longer than bcrypt reads, instead of matching on a prefix', async () => {
    const long = 'a'.repeat(80);
    const hash = await hashPassword('a'.repeat(72), 'bcrypt');
    const auth = createStaticUserAuthenticator({ carol: { password: hash, labels: {} } }, { refuseUnknown: true });
    expect(await auth.authenticate({ username: 'carol', password: long }, context)).toMatchObject({ decision: 'refuse', reason: 'password_too_long' });
    await expect(hashPassword(long)).rejects.toThrow(/longer than 72 bytes/);
  });
});

describe('static users followed by a hook', () => {
  it('with a hook after it, passes a known name with a wrong password on like an unknown one, vetoing any later acceptance', async () => {
    const users = { alice: { password: await hashPassword('correct horse', 'argon2id'), labels: {} } };
    const auth = createStaticUserAuthenticator(users, { refuseUnknown: false });
    const unknown = await auth.authenticate({ username: 'mallory', password: 'guess' }, context);
    const known = await auth.authenticate({ username: 'alice', password: 'guess' }, context);
    const tooLong = await auth.authenticate({ username: 'alice', password: 'x'.repeat(100) }, context);
    expect(unknown).toEqual({ decision: 'pass' });
    expect(known).toMatchObject({ decision: 'pass', veto: { reason: 'password_invalid', account: 'alice' } });
    expect(tooLong).toMatchObject({ decision: 'pass', veto: { reason: 'password_too_long', account: 'alice' } });
    expect(JSON.stringify(known)).not.toContain('guess');
  });
});
