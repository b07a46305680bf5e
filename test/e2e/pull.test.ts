import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { startTopology, type Topology } from '../support/topology.js';

/**
 * What a fleet runs, for real: CI pushes with a scoped token, devices pull through the credential
 * helper with their certificates, and the real registry verifies every token. skopeo is the client.
 * Once on each store engine: a SQLite file, and PostgreSQL with the keys sealed in the database.
 */
const tools = realBinaries(['docker-registry', 'skopeo', 'openssl']);
/** The engines installed here (in CI both: global setup fails without PostgreSQL). */
const ENGINES = [
  { engine: 'sqlite', available: true },
  { engine: 'postgres', available: postgresAvailable },
].filter((e) => e.available);

interface Device {
  uuid: string;
  dir: string;
  env: NodeJS.ProcessEnv;
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!tools.available).each(ENGINES)('devices pull through Tollgate from a real registry ($engine store)', ({ engine }) => {
  let t: Topology;
  let image: OciImage;
  let ci: { username: string; secret: string };
  let readOnly: { username: string; secret: string };
  let deviceA: Device;
  let deviceB: Device;
  let testDevice: Device & { expiresAt: number };

  let skopeo: Skopeo['run'];

  const ref = (repo: string) => `docker://${t.registryHost}/${repo}`;

  /** A device as it is set up in the field: its config, a PATH with the helper, an authfile naming it. */
  function deviceEnv(dir: string): NodeJS.ProcessEnv {
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ credHelpers: { [t.registryHost]: 'tollgate' } }));
    mkdirSync(join(dir, 'cache'), { recursive: true });
    return {
      PATH: `${t.binDir}:${process.env.PATH ?? ''}`,
      TOLLGATE_DEVICE_CONFIG: join(dir, 'device.json'),
      TOLLGATE_CACHE_DIR: join(dir, 'cache'),
      REGISTRY_AUTH_FILE: authfile,
    };
  }

  const pull = (d: Device, repo: string) => {
    mkdirSync(join(d.dir, 'pulled'), { recursive: true });
    return skopeo(['copy', '--authfile', d.env.REGISTRY_AUTH_FILE!, '--src-tls-verify=false', ref(repo), `oci:${join(d.dir, 'pulled', randomUUID())}:x`], d.env);
  };

  const helperGet = (d: Device): Run => {
    const r = spawnSync(join(t.binDir, 'docker-credential-tollgate'), ['get'], { input: t.registryHost, env: { ...process.env, ...d.env }, encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  const mints = (factory: string, uuid: string) =>
    t.cliJson<{ history: { action: string }[] }>(['device', 'show', factory, uuid]).history.filter((h) => h.action === 'token.minted').length;

  beforeAll(async () => {
    t = await startTopology(engine === 'postgres' ? { postgresUrl: await createTestDatabase() } : {});
    skopeo = skopeoFor(t.registryHost, t.dir).run;
    for (const f of ['factory-a', 'factory-b']) {
      expect(t.cli(['factory', 'create', f]).status).toBe(0);
      expect(t.cli(['ca', 'create', f]).status).toBe(0);
    }
    // The test certificate is issued first, with one minute to live: the rest of the suite runs
    // while it ages, and its expiry is checked last.
    const testDir = join(t.dir, 'test-device');
    const issued = t.cliJson<{ device: { uuid: string; certificate: { notAfter: string } } }>([
      'device', 'issue-test', 'factory-a', '--out', testDir, '--minutes', '1', '--registry', t.registryHost,
    ]);
    testDevice = { uuid: issued.device.uuid, dir: testDir, env: deviceEnv(testDir), expiresAt: Date.parse(issued.device.certificate.notAfter) };

    ci = t.cliJson(['token', 'create', 'factory-a', '--scope', 'containers:write', '--description', 'CI']);
    readOnly = t.cliJson(['token', 'create', 'factory-a', '--scope', 'containers:read']);

    // Device A: its own P-256 key and CSR made with openssl, enrolled by the factory's online CA.
    const aDir = join(t.dir, 'device-a');
    mkdirSync(aDir);
    const uuidA = randomUUID();
    const req = spawnSync('openssl', [
      'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(aDir, 'device.key'), '-out', join(aDir, 'device.csr'),
      '-subj', `/CN=${uuidA}/OU=factory-a`,
      '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth',
    ]);
    expect(req.status).toBe(0);
    const enrolled = t.cli(['device', 'enroll', 'factory-a', '--csr', join(aDir, 'device.csr'), '--name', 'kiosk-1', '--out', aDir, '--registry', t.registryHost]);
    expect(enrolled.status, enrolled.stderr).toBe(0);
    deviceA = { uuid: uuidA, dir: aDir, env: deviceEnv(aDir) };

    // Device B: another factory, an RSA key, issued by the one CI command.
    const bDir = join(t.dir, 'device-b');
    const b = t.cliJson<{ device: { uuid: string } }>(['device', 'issue-test', 'factory-b', '--out', bDir, '--key', 'rsa-2048', '--hours', '1', '--registry', t.registryHost]);
    deviceB = { uuid: b.device.uuid, dir: bDir, env: deviceEnv(bDir) };

    image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from factory-a\n');
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('lets CI push into its factory with a containers:write token, and not with containers:read', async () => {
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${ci.username}:${ci.secret}`, `oci:${image.dir}:latest`, ref('factory-a/app:latest')]);
    expect(push.stderr).toBe('');
    expect(push.status).toBe(0);
    const denied = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${readOnly.username}:${readOnly.secret}`, `oci:${image.dir}:latest`, ref('factory-a/ro:latest')]);
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/denied|unauthorized|authentication required/i);
  });

  it('lets a device of the factory pull through the credential helper, byte for byte', async () => {
    const out = join(deviceA.dir, 'out');
    const r = await skopeo(['copy', '--authfile', deviceA.env.REGISTRY_AUTH_FILE!, '--src-tls-verify=false', ref('factory-a/app:latest'), `oci:${out}:latest`], deviceA.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(image.manifestDigest);
  });

  it('refuses a device of another factory (an RSA device, so both key types run end to end)', async () => {
    const helper = helperGet(deviceB);
    expect(helper.status).toBe(0); // factory B's device is a device: it gets a token ...
    const r = await pull(deviceB, 'factory-a/app:latest'); // ... that reads nothing of factory A
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/denied|unauthorized|authentication required/i);
  });

  it('refuses a push by a device, even into its own factory', async () => {
    const r = await skopeo(['copy', '--authfile', deviceA.env.REGISTRY_AUTH_FILE!, '--dest-tls-verify=false', `oci:${image.dir}:latest`, ref('factory-a/from-device:latest')], deviceA.env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/denied|unauthorized|authentication required/i);
  });

  it('bursts of parallel pulls, as compose pull does, cost one gateway call', async () => {
    for (let i = 0; i < 6; i++) {
      const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${ci.username}:${ci.secret}`, `oci:${image.dir}:latest`, ref(`factory-a/svc-${i}:latest`)]);
      expect(push.status, push.stderr).toBe(0);
    }
    rmSync(join(deviceA.dir, 'cache'), { recursive: true, force: true });
    mkdirSync(join(deviceA.dir, 'cache'));
    const before = mints('factory-a', deviceA.uuid);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pull(deviceA, `factory-a/svc-${i}:latest`)));
    for (const r of results) expect(r.status, r.stderr).toBe(0);
    expect(mints('factory-a', deviceA.uuid) - before).toBe(1);
  });

  it('cuts a revoked device off at once: its minted token at the realm, then the helper at the gateway', async () => {
    const cached = helperGet(deviceA);
    expect(cached.status).toBe(0);
    const { Username, Secret } = JSON.parse(cached.stdout) as { Username: string; Secret: string };
    const realm = (auth: string) =>
      fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=repository:factory-a/app:pull`, {
        headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
      });
    expect((await realm(`${Username}:${Secret}`)).status).toBe(200);

    expect(t.cli(['device', 'revoke', 'factory-a', deviceA.uuid, '--reason', 'stolen']).status).toBe(0);

    // The token the helper still has cached is dead at the realm ...
    expect((await realm(`${Username}:${Secret}`)).status).toBe(401);
    const withCache = await pull(deviceA, 'factory-a/app:latest');
    expect(withCache.status).not.toBe(0);
    // ... and a fresh call to the gateway is refused with a reason an operator can act on.
    rmSync(join(deviceA.dir, 'cache'), { recursive: true, force: true });
    const fresh = helperGet(deviceA);
    expect(fresh.status).toBe(1);
    expect(fresh.stdout).toMatch(/revoked/);
    expect(fresh.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('lets a test device issued by the one CI command pull, and stops it when its certificate expires', async () => {
    expect(JSON.parse(readFileSync(join(testDevice.dir, 'device.json'), 'utf8'))).toMatchObject({ registries: [t.registryHost] });
    const r = await pull(testDevice, 'factory-a/app:latest');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    const wait = testDevice.expiresAt - Date.now() + 2000;
    if (wait > 0) await new Promise((done) => setTimeout(done, wait));
    // The token it holds was capped at the certificate's expiry, so the cache is no way around it.
    const after = await pull(testDevice, 'factory-a/app:latest');
    expect(after.status).not.toBe(0);
    rmSync(join(testDevice.dir, 'cache'), { recursive: true, force: true });
    const helper = helperGet(testDevice);
    expect(helper.status).toBe(1);
    expect(helper.stdout).toMatch(/expired/);
  }, 120_000);

  it('left no secret in any log', () => {
    const secrets = [ci.secret, readOnly.secret];
    for (const f of Object.values(t.logs)) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'utf8');
      for (const s of secrets) expect(text.includes(s)).toBe(false);
      expect(text).not.toMatch(/tg[dar]_[A-Za-z0-9_-]{49}/);
      expect(text).not.toMatch(/PRIVATE KEY/);
    }
  });
});
