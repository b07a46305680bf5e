import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TollgateError } from '../../shared/errors.js';
import type { AccessEntry } from '../../authsvc/policy.js';
import { signRegistryToken, type SigningKey, type TokenClaims } from '../../authsvc/jwt.js';

type Alg = SigningKey['alg'];

let dir: string;

/** Self-signed certificate for `privateKey`, made by openssl so it is independent of our code. */
function selfSignedDer(privateKey: crypto.KeyObject, name: string): Buffer {
  const keyFile = path.join(dir, `${name}.key.pem`);
  const certFile = path.join(dir, `${name}.cert.der`);
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  execFileSync(
    'openssl',
    ['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=tollgate-test-${name}`, '-days', '1', '-sha256', '-outform', 'DER', '-out', certFile],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return fs.readFileSync(certFile);
}

function generate(alg: Alg | 'RS1024' | 'P384-as-ES256'): crypto.KeyObject {
  switch (alg) {
    case 'ES256':
      return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ES384':
    case 'P384-as-ES256':
      return crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'RS256':
      return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'RS1024':
      return crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  }
}

const keys = {} as Record<Alg, SigningKey>;
const SIGNATURE_BYTES: Record<Alg, number> = { ES256: 64, ES384: 96, RS256: 256 };
const KID = 'ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ23:4567:ABCD:EFGH:IJKL:MNOP';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-jwt-'));
  for (const alg of ['ES256', 'ES384', 'RS256'] as const) {
    const privateKey = generate(alg);
    keys[alg] = { kid: `${KID}-${alg}`, alg, privateKey, certificateDer: selfSignedDer(privateKey, alg) };
  }
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const access: AccessEntry[] = [
  { type: 'repository', name: 'acme/app', actions: ['pull'] },
  { type: 'registry', name: 'catalog', actions: ['*'] },
];
const claims = (over: Partial<TokenClaims> = {}): TokenClaims => ({
  issuer: 'tollgate',
  subject: 'device:acme/dev-1',
  audience: 'registry.example.com',
  access,
  ttlSeconds: 300,
  ...over,
});

const segments = (token: string) => {
  const parts = token.split('.');
  expect(parts).toHaveLength(3);
  return parts.map((p) => Buffer.from(p!, 'base64url')) as [Buffer, Buffer, Buffer];
};

const expectError = (fn: () => unknown, code: string) => {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TollgateError);
  expect((error as TollgateError).code).toBe(code);
};

describe.each(['ES256', 'ES384', 'RS256'] as const)('signRegistryToken %s', (alg) => {
  it('verifies with jose and carries the registry claims', async () => {
    const key = keys[alg];
    const signed = signRegistryToken(key, claims());
    const publicKey = crypto.createPublicKey(key.privateKey);
    const { payload, protectedHeader } = await jwtVerify(signed.token, publicKey, {
      issuer: 'tollgate',
      audience: 'registry.example.com',
      algorithms: [alg],
    });

    expect(protectedHeader).toEqual({ alg, typ: 'JWT', kid: key.kid, x5c: [key.certificateDer.toString('base64')] });
    expect(typeof payload.aud).toBe('string');
    expect(payload.sub).toBe('device:acme/dev-1');
    expect(payload.access).toEqual(access);
    expect(payload.jti).toBe(signed.jti);
    const { iat, nbf, exp } = payload as { iat: number; nbf: number; exp: number };
    for (const t of [iat, nbf, exp]) expect(Number.isInteger(t)).toBe(true);
    expect(nbf).toBeLessThan(iat);
    expect(iat).toBeLessThan(exp);
    expect(iat - nbf).toBe(10);
    expect(exp - iat).toBe(300);
    expect(signed.issuedAt.getTime()).toBe(iat * 1000);
    expect(signed.expiresAt.getTime()).toBe(exp * 1000);
    expect(Math.abs(iat * 1000 - Date.now())).toBeLessThan(5_000);
  });

  it(`has a ${SIGNATURE_BYTES[alg]}-byte signature in JWS form`, () => {
    const key = keys[alg];
    const { token } = signRegistryToken(key, claims());
    const [, , signature] = segments(token);
    expect(signature).toHaveLength(SIGNATURE_BYTES[alg]);
    const signingInput = Buffer.from(token.slice(0, token.lastIndexOf('.')));
    const hash = alg === 'ES384' ? 'sha384' : 'sha256';
    const verifyKey =
      alg === 'RS256'
        ? { key: crypto.createPublicKey(key.privateKey), padding: crypto.constants.RSA_PKCS1_PADDING }
        : { key: crypto.createPublicKey(key.privateKey), dsaEncoding: 'ieee-p1363' as const };
    expect(crypto.verify(hash, signingInput, verifyKey, signature)).toBe(true);
  });

  it('names the key by kid alone when asked, a third of the size', async () => {
    const key = keys.ES256;
    const withKid = signRegistryToken(key, claims(), 'kid');
    const withX5c = signRegistryToken(key, claims(), 'x5c');
    const { protectedHeader } = await jwtVerify(withKid.token, crypto.createPublicKey(key.privateKey), { issuer: 'tollgate', audience: 'registry.example.com' });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    expect(withKid.token.length).toBeLessThan(withX5c.token.length / 2);
  });

  it('round-trips the certificate through x5c and verifies with it', async () => {
    const key = keys[alg];
    const { token } = signRegistryToken(key, claims());
    const header = decodeProtectedHeader(token);
    const x5c = header.x5c?.[0];
    expect(x5c).toBeDefined();
    // Standard base64, not base64url: what registries and RFC 7515 expect.
    expect(x5c).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const der = Buffer.from(x5c!, 'base64');
    expect(der.equals(key.certificateDer)).toBe(true);
    const cert = new crypto.X509Certificate(der);
    expect(cert.subject).toContain(`tollgate-test-${alg}`);
    const certKey = await importX509(cert.toString(), alg);
    await expect(jwtVerify(token, certKey, { audience: 'registry.example.com' })).resolves.toBeDefined();
  });
});

describe('signRegistryToken details', () => {
  it('emits exactly the header and claim members, aud as a string', () => {
    const [header, payload] = segments(signRegistryToken(keys.ES256, claims()).token);
    const h = JSON.parse(header.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(h)).toEqual(['alg', 'typ', 'kid', 'x5c']);
    const p = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(p)).toEqual(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'access']);
    expect(p.aud).toBe('registry.example.com');
  });

  it('uses a unique jti of at least 16 random bytes', () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const { jti } = signRegistryToken(keys.ES256, claims());
      expect(jti).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(jti, 'base64url').length).toBeGreaterThanOrEqual(16);
      jtis.add(jti);
    }
    expect(jtis.size).toBe(1000);
  });

  it('reuses the encoded header per key and keeps keys apart', () => {
    const a = signRegistryToken(keys.ES256, claims()).token.split('.')[0];
    const b = signRegistryToken(keys.ES256, claims()).token.split('.')[0];
    expect(a).toBe(b);
    const other = { ...keys.ES256, kid: 'OTHER' };
    const c = signRegistryToken(other, claims()).token.split('.')[0];
    expect(c).not.toBe(a);
    expect(decodeProtectedHeader(`${c}..`).kid).toBe('OTHER');
  });

  it('honours an explicit issue time, truncated to seconds', async () => {
    const now = new Date('2030-01-02T03:04:05.678Z');
    const signed = signRegistryToken(keys.ES256, claims({ now, ttlSeconds: 60 }));
    expect(signed.issuedAt.toISOString()).toBe('2030-01-02T03:04:05.000Z');
    expect(signed.expiresAt.toISOString()).toBe('2030-01-02T03:05:05.000Z');
    const publicKey = crypto.createPublicKey(keys.ES256.privateKey);
    const { payload } = await jwtVerify(signed.token, publicKey, { currentDate: now });
    expect(payload.nbf).toBe(Math.floor(now.getTime() / 1000) - 10);
    // A registry with a clock a few seconds behind still accepts it...
    await expect(jwtVerify(signed.token, publicKey, { currentDate: new Date(now.getTime() - 5_000) })).resolves.toBeDefined();
    // ...and nobody accepts it once expired.
    await expect(jwtVerify(signed.token, publicKey, { currentDate: new Date(now.getTime() + 61_000) })).rejects.toThrow();
  });

  it('puts only type, name and actions into access', () => {
    const sneaky = [{ type: 'repository', name: 'acme/app', actions: ['pull'], admin: true }] as unknown as AccessEntry[];
    const [, payload] = segments(signRegistryToken(keys.ES256, claims({ access: sneaky })).token);
    expect(JSON.parse(payload.toString('utf8')).access).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);
    const [, empty] = segments(signRegistryToken(keys.ES256, claims({ access: [] })).token);
    expect(JSON.parse(empty.toString('utf8')).access).toEqual([]);
  });

  it('refuses lifetimes under 60 seconds and non-integer lifetimes', () => {
    expectError(() => signRegistryToken(keys.ES256, claims({ ttlSeconds: 59 })), 'ttl_too_short');
    expectError(() => signRegistryToken(keys.ES256, claims({ ttlSeconds: 0 })), 'ttl_too_short');
    expectError(() => signRegistryToken(keys.ES256, claims({ ttlSeconds: -300 })), 'ttl_too_short');
    expectError(() => signRegistryToken(keys.ES256, claims({ ttlSeconds: 90.5 })), 'ttl_invalid');
    expectError(() => signRegistryToken(keys.ES256, claims({ ttlSeconds: Number.NaN })), 'ttl_invalid');
    expect(signRegistryToken(keys.ES256, claims({ ttlSeconds: 60 })).token).toBeTruthy();
  });

  it('refuses bad claims', () => {
    expectError(() => signRegistryToken(keys.ES256, claims({ audience: '' })), 'token_audience_invalid');
    expectError(
      () => signRegistryToken(keys.ES256, claims({ audience: ['a', 'b'] as unknown as string })),
      'token_audience_invalid',
    );
    expectError(() => signRegistryToken(keys.ES256, claims({ issuer: '' })), 'token_issuer_invalid');
    expectError(() => signRegistryToken(keys.ES256, claims({ now: new Date(Number.NaN) })), 'token_time_invalid');
  });

  it('refuses keys that do not match their algorithm or certificate', () => {
    const p384 = generate('P384-as-ES256');
    expectError(() => signRegistryToken({ ...keys.ES256, privateKey: p384 }, claims()), 'signing_key_invalid');
    expectError(() => signRegistryToken({ ...keys.ES256, alg: 'RS256' }, claims()), 'signing_key_invalid');
    expectError(() => signRegistryToken({ ...keys.RS256, alg: 'ES256' }, claims()), 'signing_key_invalid');
    const rsa1024 = generate('RS1024');
    expectError(
      () => signRegistryToken({ ...keys.RS256, privateKey: rsa1024, certificateDer: selfSignedDer(rsa1024, 'rs1024') }, claims()),
      'signing_key_invalid',
    );
    // Certificate of another key: the registry would reject every token.
    expectError(() => signRegistryToken({ ...keys.ES256, certificateDer: keys.ES384.certificateDer }, claims()), 'signing_key_invalid');
    expectError(() => signRegistryToken({ ...keys.ES256, certificateDer: Buffer.from('not a cert') }, claims()), 'signing_key_invalid');
    expectError(() => signRegistryToken({ ...keys.ES256, kid: '' }, claims()), 'signing_key_invalid');
    expectError(
      () => signRegistryToken({ ...keys.ES256, privateKey: crypto.createPublicKey(keys.ES256.privateKey) }, claims()),
      'signing_key_invalid',
    );
  });
});
