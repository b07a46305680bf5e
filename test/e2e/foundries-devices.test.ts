import { spawnSync } from 'node:child_process';
import crypto, { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { installDevicePackage, type InstalledDevicePackage } from '../support/device-package.js';
import {
  aktualizrFetch,
  estCsrBody,
  fioconfigEst,
  fioconfigRequest,
  fioconfigVerifyNewCert,
  lmpPing,
  lmpRegister,
  lockBody,
  newSec1Key,
  ptreeJson,
  rotationEvent,
  ROTATION_STEPS,
  type Endpoint,
  type Identity,
} from '../support/foundries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { startTopology, type Topology } from '../support/topology.js';

/**
 * A Foundries device against a real Tollgate and a real registry: it registers itself the way
 * lmp-device-register does (openssl-made key and CSR, all-string JSON, files written from the
 * answer), pulls through the credential helper of the device package (installed alone, reading the
 * sota.toml the registration wrote), rotates its certificate the way fioconfig does, and pulls again
 * with the new identity.
 */
const tools = realBinaries(['docker-registry', 'skopeo', 'openssl']);

describe.skipIf(!tools.available)('Foundries devices against Tollgate', () => {
  let t: Topology;
  let device: InstalledDevicePackage;
  let skopeo: Skopeo['run'];
  let registrationToken: string;
  /** The device's root: usr/lib/sota/conf.d, var/sota, etc/sota/conf.d under it. */
  let root: string;
  let sotaDir: string;
  let uuid: string;
  let gateway: Endpoint;
  let image: OciImage;

  const sotaPaths = () => [join(root, 'usr/lib/sota/conf.d'), join(sotaDir, 'sota.toml'), join(root, 'etc/sota/conf.d')].join(':');
  const deviceEnv = (): NodeJS.ProcessEnv => ({
    PATH: `${device.binDir}:${process.env.PATH ?? ''}`,
    TOLLGATE_SOTA_PATHS: sotaPaths(),
    TOLLGATE_CACHE_DIR: join(root, 'cache'),
    REGISTRY_AUTH_FILE: join(root, 'auth.json'),
  });
  const pull = () => skopeo(['copy', '--authfile', join(root, 'auth.json'), '--src-tls-verify=false', `docker://${t.registryHost}/acme/app:latest`, `oci:${join(root, 'pulled', randomUUID())}:x`], deviceEnv());
  /** The identity the device's sota.toml currently names. */
  const identity = (): Identity => {
    const sota = parse(readFileSync(join(sotaDir, 'sota.toml'), 'utf8')) as { import: Record<string, string> };
    return { cert: readFileSync(sota.import.tls_clientcert_path as string, 'utf8'), key: readFileSync(sota.import.tls_pkey_path as string, 'utf8') };
  };
  const fingerprint = (pem: string) => new crypto.X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

  beforeAll(async () => {
    t = await startTopology({ gateway: { estResponse: 'foundries' } });
    skopeo = skopeoFor(t.registryHost, t.dir).run;
    device = installDevicePackage(join(t.dir, 'device-package'));
    expect(t.cli(['factory', 'create', 'acme']).status).toBe(0);
    expect(t.cli(['ca', 'create', 'acme']).status).toBe(0);
    const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', 'acme', '--scope', 'containers:write']);
    image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from acme\n');
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${ci.username}:${ci.secret}`, `oci:${image.dir}:latest`, `docker://${t.registryHost}/acme/app:latest`]);
    expect(push.status, push.stderr).toBe(0);
    registrationToken = t.cliJson<{ secret: string }>(['token', 'create', 'acme', '--scope', 'devices:register', '--days', '7', '--description', 'production line']).secret;

    root = join(t.dir, 'device-root');
    sotaDir = join(root, 'var/sota');
    for (const d of ['usr/lib/sota/conf.d', 'var/sota', 'etc/sota/conf.d', 'cache', 'pulled']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'auth.json'), JSON.stringify({ credHelpers: { [t.registryHost]: 'tollgate' } }));
    gateway = { url: `https://127.0.0.1:${t.gatewayPort}`, ca: readFileSync(join(t.dir, 'certs', 'tls', 'ca.pem'), 'utf8') };
  }, 180_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('ships the device side as a package of its own, without any server dependency', () => {
    for (const server of ['better-sqlite3', 'express', 'pino', 'argon2', 'bcryptjs', 'openid-client', 'prom-client', 'jose', 'yaml', 'tollgate']) {
      expect(device.packages).not.toContain(server);
    }
    expect(device.packages).toEqual(expect.arrayContaining(['tollgate-device', 'smol-toml', '@peculiar/x509', 'zod']));
    const version = spawnSync(join(device.binDir, 'docker-credential-tollgate'), ['version'], { encoding: 'utf8' });
    expect(version.stdout).toBe(`docker-credential-tollgate ${JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version}\n`);
  });

  it('registers like lmp-device-register: openssl key and CSR, OSF-TOKEN, 201, files written into the sota directory', async () => {
    const api: Endpoint = { ...gateway, url: `${gateway.url}/ota/devices/` };
    expect((await lmpPing(api)).reachable).toBe(true);

    uuid = randomUUID();
    // _create_cert: `openssl ecparam -genkey -name prime256v1` (SEC1, with an EC PARAMETERS block),
    // then `openssl req -new -config device.cnf -key pkey.pem` with critical KU and EKU.
    const keyGen = spawnSync('openssl', ['ecparam', '-genkey', '-name', 'prime256v1'], { encoding: 'utf8' });
    expect(keyGen.status).toBe(0);
    const work = join(t.dir, 'lmp-tmp');
    mkdirSync(work);
    writeFileSync(join(work, 'pkey.pem'), `${keyGen.stdout}\n`);
    writeFileSync(
      join(work, 'device.cnf'),
      ['[req]', 'prompt = no', 'distinguished_name = dn', 'req_extensions = ext', '', '[dn]', `CN=${uuid}`, 'OU=acme', '', '[ext]', 'keyUsage=critical, digitalSignature', 'extendedKeyUsage=critical, clientAuth', ''].join('\n'),
    );
    const csr = spawnSync('openssl', ['req', '-new', '-config', join(work, 'device.cnf'), '-key', join(work, 'pkey.pem')], { encoding: 'utf8' });
    expect(csr.status, csr.stderr).toBe(0);

    const body = ptreeJson({
      name: 'kiosk-1',
      uuid,
      csr: csr.stdout,
      'hardware-id': 'intel-corei7-64',
      'sota-config-dir': sotaDir,
      'use-ostree-server': 'true',
      overrides: { pacman: { tags: '"main"', type: '"ostree+compose_apps"', compose_apps_root: `"${sotaDir}/compose-apps"`, reset_apps_root: `"${sotaDir}/reset-apps"` } },
    });
    const result = await lmpRegister(api, { 'OSF-TOKEN': registrationToken }, body);
    expect(result.printed).toBeUndefined();
    expect(result.answer.status).toBe(201);
    // main(): pkey.pem first, then every key of the answer as a file.
    writeFileSync(join(sotaDir, 'pkey.pem'), keyGen.stdout);
    for (const [name, content] of Object.entries(result.files as Record<string, string>)) writeFileSync(join(sotaDir, name), content);

    const history = t.cliJson<{ history: { action: string; actor: string }[] }>(['device', 'show', 'acme', uuid]).history;
    expect(history.find((h) => h.action === 'device.registered')?.actor).toMatch(/^token:tok_/);
  });

  it('pulls with skopeo through the installed helper, which reads the sota.toml layout', async () => {
    const r = await pull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const minted = t.cliJson<{ history: { action: string }[] }>(['device', 'show', 'acme', uuid]).history.filter((h) => h.action === 'token.minted');
    expect(minted).toHaveLength(1);
  });

  it('lets an aktualizr-lite-style client pull a manifest and a blob by digest, every auth answer within its 1024-byte cap', async () => {
    // aktualizr-lite's hub-creds URL: sota.toml's uptane.repo_server, last segment replaced.
    const sota = parse(readFileSync(join(sotaDir, 'sota.toml'), 'utf8')) as { uptane: { repo_server: string } };
    const hubCredsUrl = `${sota.uptane.repo_server.slice(0, sota.uptane.repo_server.lastIndexOf('/'))}/hub-creds/`;
    const common = { registry: t.registryHost, repo: 'acme/app', hubCredsUrl, gatewayCa: gateway.ca, identity: identity() };
    const manifest = await aktualizrFetch({ ...common, kind: 'manifest', digest: image.manifestDigest });
    const layer = (JSON.parse(manifest.body.toString()) as { layers: { digest: string; size: number }[] }).layers[0]!;
    const blob = await aktualizrFetch({ ...common, kind: 'blob', digest: layer.digest, expectedSize: layer.size });
    expect(blob.body.length).toBe(layer.size);
    for (const exchange of [manifest.auth, blob.auth]) {
      for (const answer of [exchange.hubCreds, exchange.token]) {
        expect(answer.status).toBe(200);
        expect(answer.bytes).toBeLessThanOrEqual(1024);
        expect(answer.chunked).toBe(false);
        expect(Number(answer.contentLength)).toBe(answer.bytes);
      }
    }
    console.info(`aktualizr-lite answer sizes: hub-creds ${manifest.auth.hubCreds.bytes} B, token ${manifest.auth.token.bytes} B (cap 1024)`);
  });

  it("rotates the certificate the way fioconfig does, then pulls with the new identity; the old one is refused", async () => {
    const current = identity();
    const correlationId = `certs-${Math.floor(Date.now() / 1000)}`;
    const notify = (type: string) => fioconfigRequest(gateway, current, 'POST', '/events', rotationEvent(type, correlationId));
    expect((await notify('CertRotationStarted')).status).toBe(200);

    const next = newSec1Key();
    const est = await fioconfigEst({ ...gateway, url: `${gateway.url}/.well-known/est` }, current, await estCsrBody(current.cert, next.key), 'mp-96');
    expect(est.error).toBeUndefined();
    expect(fioconfigVerifyNewCert(current.cert, est.certificatePem as string)).toBeNull();
    await notify(ROTATION_STEPS[0]);
    expect((await fioconfigRequest(gateway, current, 'PATCH', '/device', lockBody(next.publicKeyPem))).status).toBe(200);
    await notify(ROTATION_STEPS[1]);
    await notify(ROTATION_STEPS[2]);
    expect((await fioconfigRequest(gateway, current, 'GET', '/config-device')).status).toBe(204);
    await notify(ROTATION_STEPS[3]);

    // finalizeStep: new files under new names in storage.path, then import.* in sota.toml point at them.
    const suffix = crypto.randomBytes(4).toString('hex');
    const keyFile = join(sotaDir, `pkey.${suffix}.pem`);
    const certFile = join(sotaDir, `client.${suffix}.pem`);
    writeFileSync(keyFile, next.key, { mode: 0o600 });
    writeFileSync(certFile, est.certificatePem as string);
    const sota = parse(readFileSync(join(sotaDir, 'sota.toml'), 'utf8')) as Record<string, Record<string, unknown>>;
    sota.import = { ...sota.import, tls_pkey_path: keyFile, tls_clientcert_path: certFile };
    writeFileSync(join(sotaDir, 'sota.toml'), stringify(sota));
    await notify(ROTATION_STEPS[4]);
    expect((await notify('CertRotationCompleted')).status).toBe(200);

    const r = await pull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const old = await fioconfigRequest(gateway, current, 'GET', '/device');
    expect(old.status).toBe(403);
    expect(JSON.parse(old.text).error.code).toBe('certificate_superseded');
    const shown = t.cliJson<{ history: { action: string; details: Record<string, unknown> | null }[] }>(['device', 'show', 'acme', uuid]).history;
    expect(shown.filter((h) => h.action === 'device.event').map((h) => h.details?.type)).toEqual(['CertRotationStarted', ...ROTATION_STEPS, 'CertRotationCompleted']);
    expect(shown.some((h) => h.action === 'device.certificate_superseded')).toBe(true);
  });

  it("renews with the device package's tollgate device renew from the sota.toml layout, then pulls again", async () => {
    const before = identity();
    const renew = spawnSync(join(device.binDir, 'tollgate'), ['device', 'renew', '--force', '--json'], { env: { ...process.env, ...deviceEnv() }, encoding: 'utf8' });
    expect(renew.stderr).toBe('');
    expect(renew.status).toBe(0);
    const result = JSON.parse(renew.stdout) as { renewed: boolean; fingerprint256: string };
    expect(result.renewed).toBe(true);
    const after = identity();
    expect(fingerprint(after.cert)).toBe(result.fingerprint256);
    expect(fingerprint(after.cert)).not.toBe(fingerprint(before.cert));
    const r = await pull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const actions = t.cliJson<{ history: { action: string }[] }>(['device', 'show', 'acme', uuid]).history.map((h) => h.action);
    // The renewal announced its key before re-enrolling.
    expect(actions.lastIndexOf('device.next_key_announced')).toBeLessThan(actions.lastIndexOf('device.renewed'));
  });
});
