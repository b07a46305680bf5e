import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { basicAuthorization } from '../../authsvc/credentials.js';
import type { SigningKey } from '../../authsvc/jwt.js';
import type { AccessEntry } from '../../authsvc/policy.js';
import { writeRegistryConfig } from '../../authsvc/registry-config.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { setDeviceState } from '../../shared/authority/index.js';
import { createLogger } from '../../shared/log.js';
import { generateKeyPair, issueCertificate, libtrustKeyId } from '../../shared/pki/index.js';
import { registryAvailable, registryMissingMessage, startRegistry, type RunningRegistry } from '../support/registry.js';
import { createTestAuthority, OPERATOR, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * Forged and misused registry tokens against the real registry, which is the only verifier that
 * counts. Every forgery is checked next to a control built by the same code path with honest
 * inputs, so a 401 proves the forgery was caught, not that the token builder is broken.
 */

const runSuite = registryAvailable() || Boolean(process.env.CI);
if (!runSuite) console.warn(`skipping the forged-token suite: ${registryMissingMessage()}`);

const SERVICE = 'tollgate-registry';
const ISSUER = 'tollgate';
const REPO = 'demo/app';
const PULL: AccessEntry[] = [{ type: 'repository', name: REPO, actions: ['pull'] }];

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface Forge {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Signs the signing input; default ES256 with `key`. */
  sign?: (input: Buffer) => Buffer;
}

describe.skipIf(!runSuite)('forged tokens against a real docker-registry', () => {
  let t: TestAuthority;
  let svc: RunningAuthsvc;
  let registry: RunningRegistry;
  let trusted: SigningKey;
  let device: Credentials;
  let deviceUuid: string;
  let impostorKey: crypto.KeyObject;
  let impostorCertDer: Buffer;

  beforeAll(async () => {
    t = await createTestAuthority();
    const demo = await t.factory('demo');
    await t.signingKey();
    const view = await t.device(demo);
    deviceUuid = view.uuid;
    device = await t.deviceToken(view);
    svc = await startAuthsvc({ config: t.config, deps: t.deps, log: createLogger('authsvc', 'silent') });
    const files = await writeRegistryConfig(join(t.dir, 'registry'), {
      realm: svc.realmUrl,
      service: SERVICE,
      issuer: ISSUER,
      keys: await t.deps.store.listSigningKeys(),
    });
    const auth = parseYaml(readFileSync(files.paths.auth28, 'utf8')) as { auth: { token: Record<string, unknown> } };
    registry = await startRegistry({ authToken: auth.auth.token });
    trusted = svc.keyring.requireActive();

    // A self-signed signing certificate that the bundle does not hold.
    const pair = generateKeyPair('ec-p256');
    impostorKey = crypto.createPrivateKey(pair.privateKeyPem);
    const pem = await issueCertificate({
      profile: 'token-signing',
      subject: { commonName: 'impostor' },
      publicKey: crypto.createPublicKey(pair.publicKeyPem),
      notAfter: new Date(Date.now() + 86_400_000),
      selfSignPrivateKeyPem: pair.privateKeyPem,
    });
    impostorCertDer = new crypto.X509Certificate(pem).raw;
  });

  afterAll(async () => {
    await registry?.stop();
    await svc?.close();
    t?.cleanup();
  });

  const es256 = (key: crypto.KeyObject) => (input: Buffer) => crypto.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });

  function forge(f: Forge = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'ES256', typ: 'JWT', kid: trusted.kid, x5c: [trusted.certificateDer.toString('base64')], ...f.header };
    const claims = { iss: ISSUER, sub: 'x', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access: PULL, ...f.claims };
    const input = `${b64(header)}.${b64(claims)}`;
    const signature = (f.sign ?? es256(trusted.privateKey))(Buffer.from(input));
    return `${input}.${signature.toString('base64url')}`;
  }

  /**
   * What the registry says to a token on the repository. An authorised pull of a repository that
   * holds nothing is 404 NAME_UNKNOWN, so 404 means "accepted" and 401 "refused".
   */
  async function registryStatus(token: string): Promise<number> {
    const res = await fetch(`${registry.url}/v2/${REPO}/tags/list`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return res.status;
  }

  const ACCEPTED = 404;
  const REFUSED = 401;

  it('accepts the honest control token built by the same forge', async () => {
    expect(await registryStatus(forge())).toBe(ACCEPTED);
  });

  it('refuses alg none with an empty signature', async () => {
    const token = forge({ header: { alg: 'none' }, sign: () => Buffer.alloc(0) });
    expect(token.endsWith('.')).toBe(true);
    expect(await registryStatus(token)).toBe(REFUSED);
  });

  it('refuses HS256 keyed with the public certificate or public key PEM bytes', async () => {
    const certPem = `-----BEGIN CERTIFICATE-----\n${trusted.certificateDer.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
    const publicPem = crypto.createPublicKey(trusted.privateKey).export({ type: 'spki', format: 'pem' }).toString();
    for (const secret of [certPem, publicPem, trusted.certificateDer]) {
      const hmac = (input: Buffer) => crypto.createHmac('sha256', secret).update(input).digest();
      expect(await registryStatus(forge({ header: { alg: 'HS256' }, sign: hmac }))).toBe(REFUSED);
      // Without x5c the registry looks the kid up: still no HMAC.
      expect(await registryStatus(forge({ header: { alg: 'HS256', x5c: undefined }, sign: hmac }))).toBe(REFUSED);
    }
  });

  it('refuses a foreign self-signed x5c chain, with its own kid or the trusted kid', async () => {
    const foreignKid = libtrustKeyId(crypto.createPublicKey(impostorKey));
    const x5c = [impostorCertDer.toString('base64')];
    expect(await registryStatus(forge({ header: { x5c, kid: foreignKid }, sign: es256(impostorKey) }))).toBe(REFUSED);
    expect(await registryStatus(forge({ header: { x5c }, sign: es256(impostorKey) }))).toBe(REFUSED);
    // The foreign certificate put behind the trusted one as if it were its issuer.
    expect(await registryStatus(forge({ header: { x5c: [impostorCertDer.toString('base64'), trusted.certificateDer.toString('base64')] }, sign: es256(impostorKey) }))).toBe(REFUSED);
  });

  it('refuses a trusted kid or trusted x5c whose signature was made by another key', async () => {
    expect(await registryStatus(forge({ header: { x5c: undefined }, sign: es256(impostorKey) }))).toBe(REFUSED);
    expect(await registryStatus(forge({ sign: es256(impostorKey) }))).toBe(REFUSED);
    // Control: the kid-only path accepts the trusted key, so the refusal above is the signature's.
    expect(await registryStatus(forge({ header: { x5c: undefined } }))).toBe(ACCEPTED);
  });

  it('refuses expired and not-yet-valid tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await registryStatus(forge({ claims: { iat: now - 7200, nbf: now - 7210, exp: now - 3600 } }))).toBe(REFUSED);
    expect(await registryStatus(forge({ claims: { iat: now + 600, nbf: now + 600, exp: now + 900 } }))).toBe(REFUSED);
  });

  it('refuses the wrong audience and the wrong issuer', async () => {
    expect(await registryStatus(forge({ claims: { aud: 'another-registry' } }))).toBe(REFUSED);
    expect(await registryStatus(forge({ claims: { aud: [] } }))).toBe(REFUSED);
    expect(await registryStatus(forge({ claims: { iss: 'someone-else' } }))).toBe(REFUSED);
  });

  it('refuses a realm token whose access claim was tampered with', async () => {
    const login = await realm(device, []);
    expect(login.status).toBe(200);
    const [header, payload, signature] = login.token.split('.') as [string, string, string];
    expect(await registryStatus(login.token)).toBe(REFUSED); // no access: refused for lack of scope
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const widened = `${header}.${b64({ ...claims, access: PULL })}.${signature}`;
    expect(await registryStatus(widened)).toBe(REFUSED);
    // Control: the realm's own pull token on the same repository is accepted.
    const honest = await realm(device, [`repository:${REPO}:pull`]);
    expect(await registryStatus(honest.token)).toBe(ACCEPTED);
  });

  async function realm(creds: Credentials, scopes: string[]): Promise<{ status: number; token: string }> {
    const q = new URLSearchParams({ service: SERVICE });
    for (const s of scopes) q.append('scope', s);
    const res = await fetch(`${svc.realmUrl}?${q}`, { headers: { authorization: basicAuthorization(creds.username, creds.secret) } });
    const body = (await res.json()) as { token?: string };
    return { status: res.status, token: body.token ?? '' };
  }

  it('stops a /hub-creds/ token at the realm once its lifetime is over', async () => {
    const demo = await t.deps.store.getFactoryByName('demo');
    if (!demo) throw new Error('factory demo is missing');
    const fresh = await t.deviceToken(await t.device(demo));
    expect((await realm(fresh, [`repository:${REPO}:pull`])).status).toBe(200);
    t.setNow(fresh.expiresAt + 1_000);
    try {
      expect((await realm(fresh, [`repository:${REPO}:pull`])).status).toBe(401);
    } finally {
      t.setNow(null);
    }
  });

  it('stops a device token at the realm once the device is revoked', async () => {
    expect((await realm(device, [`repository:${REPO}:pull`])).status).toBe(200);
    const demo = await t.deps.store.getFactoryByName('demo');
    if (!demo) throw new Error('factory demo is missing');
    await setDeviceState(t.deps, OPERATOR, demo, deviceUuid, 'revoked', 'stolen');
    expect((await realm(device, [`repository:${REPO}:pull`])).status).toBe(401);
  });
});
