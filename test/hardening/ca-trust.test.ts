import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, derToPem, generateKeyPair, parseCertificate } from '../../shared/pki/index.js';
import { x509 } from '../../shared/pki/peculiar.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';
import { deviceGet } from '../support/device-client.js';
import { refusalCode as refusal, registerCa } from '../support/gateway-authority.js';

/**
 * What one factory's CAs can do to another factory's devices, and how the gateway judges a device
 * certificate against the CAs: a CA that copies another factory's CA name and key identifier (one
 * OpenSSL trust store picks issuers by name), a CA registered a moment ago, a CA that expired.
 */

const DAY = 86_400_000;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };
const log = createLogger('ca-trust-test', 'silent');

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
const gateways: RunningGateway[] = [];
let clockOffset = 0;

interface Issuer {
  certificatePem: string;
  privateKeyPem: string;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-trust-'));
  config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0' }, cwd: dir });
  deps = openAuthority(config, () => Date.now() + clockOffset);
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function gateway(): Promise<RunningGateway> {
  const g = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
  gateways.push(g);
  return g;
}

/** A self-signed CA with exactly this subject, and this subject key identifier if given. */
async function craftCa(subject: { CN: string; O: string }, options: { skid?: string; notAfter?: Date } = {}): Promise<Issuer> {
  const keys = (await crypto.webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as crypto.webcrypto.CryptoKeyPair;
  const name = new x509.Name([{ O: [{ utf8String: subject.O }] }, { CN: [{ utf8String: subject.CN }] }]);
  const spki = Buffer.from(await crypto.webcrypto.subtle.exportKey('spki', keys.publicKey));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: name,
    issuer: name,
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      options.skid !== undefined ? new x509.SubjectKeyIdentifierExtension(options.skid) : await x509.SubjectKeyIdentifierExtension.create(spki),
    ],
  });
  const pkcs8 = Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certificatePem: derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE'), privateKeyPem: derToPem(pkcs8, 'PRIVATE KEY') };
}

/** A device certificate `issuer` signs, valid until `notAfter` whatever the issuer's own validity. */
async function craftDevice(issuer: Issuer, factory: string, notAfter = new Date(Date.now() + 30 * DAY)) {
  const uuid = randomUUID();
  const pair = generateKeyPair('ec-p256');
  const ca = new x509.X509Certificate(issuer.certificatePem);
  const signingKey = await crypto.webcrypto.subtle.importKey(
    'pkcs8',
    crypto.createPrivateKey(issuer.privateKeyPem).export({ type: 'pkcs8', format: 'der' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const skid = ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: new x509.Name([{ OU: [{ utf8String: factory }] }, { CN: [{ utf8String: uuid }] }]),
    issuer: ca.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    publicKey: new Uint8Array(crypto.createPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' })),
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([CLIENT_AUTH]),
      new x509.AuthorityKeyIdentifierExtension(skid),
    ],
  });
  return { uuid, key: pair.privateKeyPem, cert: derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE') };
}

const register = (factory: string, ca: Issuer) => registerCa(service, factory, ca);

const get = (g: RunningGateway, path: string, creds: { key: string; cert: string }) => deviceGet({ port: g.port, caPem: material.caPem }, path, creds);

describe('one factory\'s CAs cannot shadow another factory\'s', () => {
  const SUBJECT = { CN: 'Fleet Device CA', O: 'Example Industries' };
  let victimCa: Issuer;
  let victimDevice: { uuid: string; key: string; cert: string };

  beforeAll(async () => {
    for (const name of ['victim', 'mimic']) await createFactory(deps, system, name);
    victimCa = await craftCa(SUBJECT);
    await register('victim', victimCa);
    victimDevice = await craftDevice(victimCa, 'victim');
    await service.enroll(operator, 'victim', { certificate: victimDevice.cert });
  });

  it('refuses a CA whose subject another factory\'s CA has, however its letters and spaces are written', async () => {
    const skid = new x509.X509Certificate(victimCa.certificatePem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(await refusal(register('mimic', await craftCa(SUBJECT, { skid })))).toBe('ca_subject_in_use');
    expect(await refusal(register('mimic', await craftCa({ CN: 'fleet  DEVICE ca ', O: ' example industries' })))).toBe('ca_subject_in_use');
    // The factory itself may roll its CA over under the same name.
    expect(await refusal(register('victim', await craftCa(SUBJECT)))).toBe('accepted');
  });

  it('lets a CA with the same name and key identifier in another factory change nothing for this factory\'s devices', async () => {
    const skid = new x509.X509Certificate(victimCa.certificatePem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    // As it would be in a store from before the refusal: inserted directly, and dated first, so that
    // one trust store holding every factory's CAs would find it first by name.
    const shadow = await craftCa(SUBJECT, { skid });
    const info = parseCertificate(shadow.certificatePem);
    const mimic = await deps.store.getFactoryByName('mimic');
    await deps.store.addDeviceCa(
      { id: randomUUID(), factoryId: mimic!.id, kind: 'external', certificatePem: info.pem, fingerprint256: info.fingerprint256, subjectCommonName: SUBJECT.CN, notAfter: info.notAfter.getTime(), state: 'active', stateReason: null, keyRef: null, createdAt: 0 },
      { actor: 'system', action: 'ca.added', outcome: 'success', factoryId: mimic!.id },
    );
    const g = await gateway();
    expect(await get(g, '/device', victimDevice)).toEqual({ status: 200, code: undefined });
    // And the shadow's own certificates naming the victim factory get nowhere, just in time or not.
    await service.updateFactorySettings(operator, 'victim', { jit: 'active' });
    const forged = await craftDevice(shadow, 'victim');
    const res = await get(g, '/hub-creds/', forged);
    expect([401, 403]).toContain(res.status);
    expect(await deps.store.getDevice(forged.uuid)).toBeNull();
  });
});

describe('the gateway judges a device certificate against its CAs as they are now', () => {
  it('trusts a CA from the very first request after it is registered', async () => {
    const g = await gateway();
    await createFactory(deps, system, 'newcomer');
    const ca = await craftCa({ CN: 'Newcomer CA', O: 'Newcomer' });
    await register('newcomer', ca);
    const device = await craftDevice(ca, 'newcomer');
    await service.enroll(operator, 'newcomer', { certificate: device.cert });
    expect(await get(g, '/device', device)).toEqual({ status: 200, code: undefined });
  });

  it('reports an expired CA as ca_expired, not as an expired device certificate', async () => {
    const g = await gateway();
    const factory = await createFactory(deps, system, 'shortlived');
    await createOnlineCa(deps, system, factory, { days: 2 });
    const uuid = randomUUID();
    const pair = generateKeyPair('ec-p256');
    const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'shortlived' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
    const enrolled = await service.enroll(operator, 'shortlived', { csr });
    clockOffset = 3 * DAY;
    try {
      expect(await get(g, '/device', { key: pair.privateKeyPem, cert: enrolled.certificate })).toEqual({ status: 401, code: 'ca_expired' });
    } finally {
      clockOffset = 0;
    }
  });
});

describe('a device certificate cannot outlive its CA', () => {
  it('is refused at enrollment and just in time when it would', async () => {
    const g = await gateway();
    await createFactory(deps, system, 'brief');
    const ca = await craftCa({ CN: 'Brief CA', O: 'Brief' }, { notAfter: new Date(Date.now() + 2 * DAY) });
    await register('brief', ca);
    const outliving = await craftDevice(ca, 'brief', new Date(Date.now() + 30 * DAY));
    expect(await refusal(service.enroll(operator, 'brief', { certificate: outliving.cert }))).toBe('certificate_outlives_ca');
    await service.updateFactorySettings(operator, 'brief', { jit: 'active' });
    expect(await get(g, '/hub-creds/', outliving)).toEqual({ status: 403, code: 'certificate_outlives_ca' });
    expect(await deps.store.getDevice(outliving.uuid)).toBeNull();
    // Within the CA's lifetime it is welcome.
    const fitting = await craftDevice(ca, 'brief', new Date(Date.now() + DAY));
    expect((await get(g, '/hub-creds/', fitting)).status).toBe(200);
  });
});
