import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { signRegistryToken, type SigningKey } from '../../authsvc/jwt.js';
import type { AccessEntry } from '../../authsvc/policy.js';
import { writeRegistryConfig, type WrittenRegistryConfig } from '../../authsvc/registry-config.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { createLogger } from '../../shared/log.js';
import { generateKeyPair, issueCertificate, libtrustKeyId } from '../../shared/pki/index.js';
import { buildOciLayout } from '../support/oci.js';
import { registryAvailable, registryMissingMessage, startRegistry, type RunningRegistry } from '../support/registry.js';
import { createTestAuthority, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * The realm against the real registry: the registry verifies every token Tollgate signs, with
 * nothing but the files writeRegistryConfig produced. Plain HTTP (fetch) is the client.
 */

// In CI the suite always runs, so a missing registry fails it loudly instead of skipping.
const runSuite = registryAvailable() || Boolean(process.env.CI);
if (!runSuite) console.warn(`skipping the real-registry suite: ${registryMissingMessage()}`);

const SERVICE = 'tollgate-registry';
const ISSUER = 'tollgate';
const REPO = 'demo/app';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe.skipIf(!runSuite)('realm tokens against a real docker-registry', () => {
  let t: TestAuthority;
  let svc: RunningAuthsvc;
  let registry: RunningRegistry;
  let files: WrittenRegistryConfig;
  let ci: Credentials;
  let demoDevice: Credentials;
  let otherDevice: Credentials;
  let blobDir: string;
  let manifestDigest: string;

  beforeAll(async () => {
    t = await createTestAuthority();
    const demo = await t.factory('demo');
    const other = await t.factory('other');
    await t.signingKey();
    ci = await t.apiToken(demo, ['containers:write']);
    demoDevice = await t.deviceToken(await t.device(demo));
    otherDevice = await t.deviceToken(await t.device(other));
    svc = await startAuthsvc({ config: t.config, deps: t.deps, log: createLogger('authsvc', 'silent') });
    files = await writeRegistryConfig(join(t.dir, 'registry'), {
      realm: svc.realmUrl,
      service: SERVICE,
      issuer: ISSUER,
      keys: await t.deps.store.listSigningKeys(),
    });
    const auth = parseYaml(readFileSync(files.paths.auth28, 'utf8')) as { auth: { token: Record<string, unknown> } };
    registry = await startRegistry({ authToken: auth.auth.token });
    blobDir = mkdtempSync(join(tmpdir(), 'tollgate-oci-'));
  });

  afterAll(async () => {
    await registry?.stop();
    await svc?.close();
    t?.cleanup();
    if (blobDir) rmSync(blobDir, { recursive: true, force: true });
  });

  const v2 = (path: string) => `${registry.url}/v2/${path}`;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  async function realmToken(creds: Credentials, scopes: string[]): Promise<{ token: string; access: AccessEntry[] }> {
    const q = new URLSearchParams({ service: SERVICE, client_id: 'tollgate-test' });
    for (const s of scopes) q.append('scope', s);
    const res = await fetch(`${svc.realmUrl}?${q}`, { headers: { authorization: basicAuthorization(creds.username, creds.secret) } });
    expect(res.status).toBe(200);
    const token = ((await res.json()) as { token: string }).token;
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: AccessEntry[] };
    return { token, access: payload.access };
  }

  async function uploadBlob(token: string, content: Buffer): Promise<string> {
    const digest = `sha256:${crypto.createHash('sha256').update(content).digest('hex')}`;
    const start = await fetch(v2(`${REPO}/blobs/uploads/`), { method: 'POST', headers: bearer(token) });
    expect(start.status, registry.output()).toBe(202);
    const location = new URL(start.headers.get('location')!, registry.url);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      headers: { ...bearer(token), 'content-type': 'application/octet-stream' },
      body: new Uint8Array(content),
    });
    expect(put.status, await put.text()).toBe(201);
    return digest;
  }

  it('challenges a client without a token, naming the realm and service', async () => {
    const res = await fetch(v2(''));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${svc.realmUrl}",service="${SERVICE}"`);
  });

  it('accepts a login token (no scope) on /v2/', async () => {
    const { token, access } = await realmToken(ci, []);
    expect(access).toEqual([]);
    expect((await fetch(v2(''), { headers: bearer(token) })).status).toBe(200);
  });

  it('lets a containers:write API token push blobs and an OCI manifest', async () => {
    const { token, access } = await realmToken(ci, [`repository:${REPO}:pull,push`]);
    expect(access).toEqual([{ type: 'repository', name: REPO, actions: ['pull', 'push'] }]);
    // authsvc.tokenKeyHint defaults to kid: registry 2.8 finds the key in its bundle by libtrust kid.
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: svc.keyring.requireActive().kid });

    const image = buildOciLayout(blobDir, 'v1', 'hello from tollgate');
    const blob = (digest: string) => readFileSync(join(blobDir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const manifestBytes = blob(image.manifestDigest);
    const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    expect(await uploadBlob(token, blob(manifest.config.digest))).toBe(manifest.config.digest);
    expect(await uploadBlob(token, blob(manifest.layers[0]!.digest))).toBe(manifest.layers[0]!.digest);

    const put = await fetch(v2(`${REPO}/manifests/v1`), {
      method: 'PUT',
      headers: { ...bearer(token), 'content-type': OCI_MANIFEST },
      body: new Uint8Array(manifestBytes),
    });
    expect(put.status, await put.text()).toBe(201);
    manifestDigest = image.manifestDigest;
    expect(put.headers.get('docker-content-digest')).toBe(manifestDigest);
  });

  it("lets a device pull its factory's image but not push", async () => {
    const { token, access } = await realmToken(demoDevice, [`repository:${REPO}:pull,push`]);
    expect(access).toEqual([{ type: 'repository', name: REPO, actions: ['pull'] }]);
    const manifest = await fetch(v2(`${REPO}/manifests/v1`), { headers: { ...bearer(token), accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(manifestDigest);

    const push = await fetch(v2(`${REPO}/blobs/uploads/`), { method: 'POST', headers: bearer(token) });
    expect(push.status).toBe(401);
    expect(push.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('gives a device of another factory nothing the registry accepts', async () => {
    const { token, access } = await realmToken(otherDevice, [`repository:${REPO}:pull`]);
    expect(access).toEqual([]);
    const res = await fetch(v2(`${REPO}/manifests/v1`), { headers: { ...bearer(token), accept: OCI_MANIFEST } });
    expect(res.status).toBe(401);
  });

  const pullAccess: AccessEntry[] = [{ type: 'repository', name: REPO, actions: ['pull'] }];
  const getManifest = (token: string) => fetch(v2(`${REPO}/manifests/v1`), { headers: { ...bearer(token), accept: OCI_MANIFEST } });

  it('refuses an expired token signed with the trusted key', async () => {
    const key = svc.keyring.requireActive();
    const claims = { issuer: ISSUER, subject: 'x', audience: SERVICE, access: pullAccess, ttlSeconds: 300 };
    // The same claims signed now pass: only the expiry differs.
    expect((await getManifest(signRegistryToken(key, claims).token)).status).toBe(200);
    const expired = signRegistryToken(key, { ...claims, now: new Date(Date.now() - 3600_000) });
    expect((await getManifest(expired.token)).status).toBe(401);
  });

  it('refuses a token signed by a key the bundle does not hold, whatever its x5c says', async () => {
    const pair = generateKeyPair('ec-p256');
    const publicKey = crypto.createPublicKey(pair.publicKeyPem);
    const certificatePem = await issueCertificate({
      profile: 'token-signing',
      subject: { commonName: 'impostor' },
      publicKey,
      notAfter: new Date(Date.now() + 86_400_000),
      selfSignPrivateKeyPem: pair.privateKeyPem,
    });
    const impostor: SigningKey = {
      kid: libtrustKeyId(publicKey),
      alg: 'ES256',
      privateKey: crypto.createPrivateKey(pair.privateKeyPem),
      certificateDer: new crypto.X509Certificate(certificatePem).raw,
    };
    const forged = signRegistryToken(impostor, { issuer: ISSUER, subject: 'x', audience: SERVICE, access: pullAccess, ttlSeconds: 300 });
    expect((await getManifest(forged.token)).status).toBe(401);
  });

  /** A token carrying only `kid`, the way registry 2.8 finds keys when there is no x5c. */
  function kidOnlyToken(key: SigningKey, kid: string): string {
    const now = Math.floor(Date.now() / 1000);
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({ iss: ISSUER, sub: 'x', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access: pullAccess }),
    ).toString('base64url');
    const signature = crypto.sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${header}.${payload}.${signature.toString('base64url')}`;
  }

  it('matches the libtrust kid the registry computes from the bundle', async () => {
    const key = svc.keyring.requireActive();
    expect((await getManifest(kidOnlyToken(key, key.kid))).status).toBe(200);
    expect((await getManifest(kidOnlyToken(key, 'AAAA:BBBB:CCCC:DDDD:EEEE:FFFF:GGGG:HHHH:IIII:JJJJ:KKKK:LLLL'))).status).toBe(401);
  });

  it('writes a JWKS and a 3.x snippet that name the same kid as the tokens', async () => {
    const key = svc.keyring.requireActive();
    const jwks = JSON.parse(readFileSync(files.paths.jwks, 'utf8')) as { keys: (Record<string, unknown> & { kid: string })[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([key.kid]);
    const publicKey = await importJWK(jwks.keys[0]!, 'ES256');
    expect(publicKey).toBeDefined();
    const auth3 = parseYaml(readFileSync(files.paths.auth3, 'utf8')) as { auth: { token: Record<string, unknown> } };
    expect(auth3.auth.token).toMatchObject({
      realm: svc.realmUrl,
      service: SERVICE,
      issuer: ISSUER,
      rootcertbundle: files.paths.rootBundle,
      jwks: files.paths.jwks,
      signingalgorithms: ['ES256'],
    });
  });
});
