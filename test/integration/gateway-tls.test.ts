import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, derToPem, generateKeyPair, issueCertificate, type KeyAlgorithm } from '../../shared/pki/index.js';
import { x509 } from '../../shared/pki/peculiar.js';
import { importSigner } from '../../shared/pki/signer.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/**
 * The gateway over real TLS sockets: what a device presents is decided by the TLS stack, and every
 * request is judged again, whatever the connection or session has done before.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY = 86_400_000;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };
const log = createLogger('gateway-tls-test', 'silent');

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;
const extraGateways: RunningGateway[] = [];
let clockOffset = 0;

interface Credentials {
  uuid: string;
  key: string;
  cert: string;
}

interface Answer {
  status: number;
  body: { error?: { code: string }; [k: string]: unknown };
  localPort: number | undefined;
  reusedSocket: boolean;
}

async function startExtraGateway(): Promise<RunningGateway> {
  const g = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
  extraGateways.push(g);
  return g;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-gateway-tls-'));
  config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0' }, cwd: dir });
  deps = openAuthority(config, () => Date.now() + clockOffset);
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
  for (const name of ['acme', 'other']) await createOnlineCa(deps, system, await createFactory(deps, system, name));
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
});

afterAll(async () => {
  await Promise.all([gateway?.close(), ...extraGateways.map((g) => g.close())]);
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---- helpers --------------------------------------------------------------------------------

async function enroll(factory = 'acme', algorithm: KeyAlgorithm = 'ec-p256', extra: { days?: number } = {}): Promise<Credentials> {
  const uuid = randomUUID();
  const pair = generateKeyPair(algorithm);
  const csr = await createCsr({
    subject: { commonName: uuid, organizationalUnit: factory },
    ...pair,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: [CLIENT_AUTH],
  });
  const enrolled = await service.enroll(operator, factory, { csr, ...extra });
  return { uuid, key: pair.privateKeyPem, cert: enrolled.certificate };
}

/** The active online CA of a factory, with its key, to mint certificates the authority would not. */
async function onlineCa(factory: string): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const f = await deps.store.getFactoryByName(factory);
  const ca = (await deps.store.listDeviceCas({ factoryId: f!.id })).find((c) => c.kind === 'online' && c.state === 'active')!;
  return { certificatePem: ca.certificatePem, privateKeyPem: await deps.keys.get(ca.keyRef!) };
}

/** A CA nobody registered, named like a factory's own. */
async function selfSignedCa(factory: string): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const pair = generateKeyPair('ec-p256');
  const certificatePem = await issueCertificate({
    profile: 'device-ca',
    subject: { commonName: `${factory} device CA`, organizationalUnit: factory },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + 365 * DAY),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  return { certificatePem, privateKeyPem: pair.privateKeyPem };
}

async function deviceCertificate(issuer: { certificatePem: string; privateKeyPem: string }, uuid: string, factory = 'acme'): Promise<Credentials> {
  const pair = generateKeyPair('ec-p256');
  const cert = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: uuid, organizationalUnit: factory },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + DAY),
    issuer,
  });
  return { uuid, key: pair.privateKeyPem, cert };
}

function get(
  path: string,
  creds: { key: string; cert: string } | null,
  options: { agent?: https.Agent; headers?: Record<string, string>; port?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: options.port ?? gateway.port,
        path,
        ca: material.caPem,
        servername: 'localhost',
        ...(creds ? { key: creds.key, cert: creds.cert } : {}),
        agent: options.agent ?? false,
        headers: options.headers ?? {},
      },
      (res) => {
        const localPort = res.socket.localPort;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'], localPort, reusedSocket: req.reusedSocket });
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface RawAnswer {
  status: number;
  body: { error?: { code: string }; [k: string]: unknown };
  sessionReused: boolean;
  session: Buffer | undefined;
}

/** One request on a fresh TLS connection, optionally resuming `session`; reports whether it did. */
function rawGet(path: string, creds: Credentials, session?: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let saved: Buffer | undefined;
    let reused = false;
    let data = '';
    const socket = tls.connect({
      host: '127.0.0.1',
      port: gateway.port,
      ca: material.caPem,
      servername: 'localhost',
      key: creds.key,
      cert: creds.cert,
      ...(session ? { session } : {}),
    });
    socket.on('session', (s: Buffer) => (saved = s));
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const body = data.slice(data.indexOf('\r\n\r\n') + 4);
      try {
        resolve({ status, body: JSON.parse(body) as RawAnswer['body'], sessionReused: reused, session: saved });
      } catch (e) {
        reject(e);
      }
    });
  });
}

const codeOf = (a: { body: { error?: { code: string } } }) => a.body.error?.code;

// ---- tests ----------------------------------------------------------------------------------

describe('gateway over real TLS', () => {
  it.each(['ec-p256', 'rsa-2048'] as const)('gives a %s device a token from /hub-creds/', async (algorithm) => {
    const device = await enroll('acme', algorithm);
    const res = await get('/hub-creds/', device);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.Username).toBe(device.uuid);
    expect(res.body.Secret).toMatch(/^tgd_[A-Za-z0-9_-]{49}$/);
  });

  it('reports a device with its own factory on /device', async () => {
    const a = await enroll('acme');
    const b = await enroll('other');
    const ra = await get('/device', a);
    const rb = await get('/device', b);
    expect([ra.status, ra.body.uuid, ra.body.factory]).toEqual([200, a.uuid, 'acme']);
    expect([rb.status, rb.body.uuid, rb.body.factory]).toEqual([200, b.uuid, 'other']);
  });

  it('refuses a client without a certificate: 401 certificate_required', async () => {
    const res = await get('/hub-creds/', null);
    expect([res.status, codeOf(res)]).toEqual([401, 'certificate_required']);
  });

  it('ignores client-certificate headers: without a TLS client certificate it is still 401', async () => {
    const device = await enroll();
    const headers = {
      'X-SSL-Client-Cert': encodeURIComponent(device.cert),
      'X-SSL-Client-Verify': 'SUCCESS',
      'X-Forwarded-Client-Cert': `Hash=00;Cert="${encodeURIComponent(device.cert)}";Subject="CN=${device.uuid},OU=acme"`,
      'X-Client-Cert': device.cert.replace(/\n/g, ' '),
      'X-Forwarded-For': '127.0.0.1',
    };
    for (const path of ['/hub-creds/', '/device']) {
      const res = await get(path, null, { headers });
      expect([res.status, codeOf(res)]).toEqual([401, 'certificate_required']);
    }
  });

  it('refuses a certificate from a CA nobody registered: 401 certificate_untrusted', async () => {
    const forged = await deviceCertificate(await selfSignedCa('acme'), randomUUID());
    const res = await get('/hub-creds/', forged);
    expect([res.status, codeOf(res)]).toEqual([401, 'certificate_untrusted']);
  });

  it('refuses an expired certificate: 401 certificate_expired', async () => {
    clockOffset = -10 * DAY;
    let device: Credentials;
    try {
      device = await enroll('acme', 'ec-p256', { days: 1 });
    } finally {
      clockOffset = 0;
    }
    const res = await get('/hub-creds/', device);
    expect([res.status, codeOf(res)]).toEqual([401, 'certificate_expired']);
  });

  it('refuses a revoked device (403 device_revoked) and a disabled one (403 device_disabled)', async () => {
    const revoked = await enroll();
    await service.setDeviceState(operator, 'acme', revoked.uuid, 'revoked', 'stolen');
    const r1 = await get('/hub-creds/', revoked);
    expect([r1.status, codeOf(r1)]).toEqual([403, 'device_revoked']);

    const disabled = await enroll();
    await service.setDeviceState(operator, 'acme', disabled.uuid, 'disabled', 'maintenance');
    const r2 = await get('/hub-creds/', disabled);
    expect([r2.status, codeOf(r2)]).toEqual([403, 'device_disabled']);
    await service.setDeviceState(operator, 'acme', disabled.uuid, 'active', null);
    expect((await get('/hub-creds/', disabled)).status).toBe(200);
  });

  it('refuses a second certificate from the same CA naming an enrolled UUID: 403 certificate_mismatch', async () => {
    const victim = await enroll();
    const impostor = await deviceCertificate(await onlineCa('acme'), victim.uuid);
    const res = await get('/hub-creds/', impostor);
    expect([res.status, codeOf(res)]).toEqual([403, 'certificate_mismatch']);
    // The genuine device is unaffected.
    expect((await get('/hub-creds/', victim)).status).toBe(200);
  });

  it('refuses a certificate signed by a device key (a device certificate is no CA): 401', async () => {
    const device = await enroll();
    const signer = await importSigner(device.key, 'device key');
    const leafPair = generateKeyPair('ec-p256');
    const leafSpki = crypto.createPublicKey(leafPair.publicKeyPem).export({ type: 'spki', format: 'der' });
    const now = Date.now();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '0badc0de',
      subject: new x509.Name([{ OU: [{ utf8String: 'acme' }] }, { CN: [{ utf8String: randomUUID() }] }]),
      issuer: new x509.X509Certificate(device.cert).subjectName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + DAY),
      publicKey: new Uint8Array(leafSpki),
      signingKey: signer.privateKey,
      signingAlgorithm: signer.signingAlgorithm,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension([CLIENT_AUTH])],
    });
    const leafPem = derToPem(new Uint8Array(leaf.rawData), 'CERTIFICATE');
    // Without the device certificate, no chain leads to a registered CA.
    const alone = await get('/hub-creds/', { key: leafPair.privateKeyPem, cert: leafPem });
    expect([alone.status, codeOf(alone)]).toEqual([401, 'certificate_untrusted']);
    // With it sent along as the "intermediate", OpenSSL refuses the chain (a CA:false, pathlen-0
    // issuer); the exact verify error varies with the OpenSSL build, the refusal does not.
    const chained = await get('/hub-creds/', { key: leafPair.privateKeyPem, cert: leafPem + device.cert });
    expect(chained.status).toBe(401);
    expect(codeOf(chained)).toMatch(/^certificate_(untrusted|rejected)$/);
  });

  it('sees a revocation on an open keep-alive connection: the next request on the same socket is 403', async () => {
    const device = await enroll();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get('/hub-creds/', device, { agent });
      expect(first.status).toBe(200);
      await service.setDeviceState(operator, 'acme', device.uuid, 'revoked', 'stolen');
      const second = await get('/hub-creds/', device, { agent });
      expect(second.reusedSocket).toBe(true);
      expect(second.localPort).toBe(first.localPort);
      expect([second.status, codeOf(second)]).toEqual([403, 'device_revoked']);
    } finally {
      agent.destroy();
    }
  });

  it('sees a revocation on a resumed TLS session: the resumed handshake carries no verdict', async () => {
    const device = await enroll();
    const first = await rawGet('/hub-creds/', device);
    expect(first.status).toBe(200);
    expect(first.session).toBeInstanceOf(Buffer);
    await service.setDeviceState(operator, 'acme', device.uuid, 'revoked', 'stolen');
    const resumed = await rawGet('/hub-creds/', device, first.session);
    expect(resumed.sessionReused).toBe(true);
    expect([resumed.status, codeOf(resumed)]).toEqual([403, 'device_revoked']);
  });
});

describe('gateway trust follows the device CA set', () => {
  it('trusts a CA from the first connection after it is created, and stops at once when it is revoked', async () => {
    const g = await startExtraGateway();
    const late = await createFactory(deps, system, 'late');
    const ca = await createOnlineCa(deps, system, late);
    const device = await enroll('late');
    const first = await get('/hub-creds/', device, { port: g.port });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    await service.setCaState(operator, 'late', ca.id, 'revoked', 'key lost');
    const after = await get('/hub-creds/', device, { port: g.port });
    expect([after.status, codeOf(after)]).toEqual([403, 'ca_revoked']);
  });
});
