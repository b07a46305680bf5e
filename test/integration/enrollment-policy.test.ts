import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { isTollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair, issueCertificate, OID, type KeyAlgorithm } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';

/**
 * The configured certificate policy (`pki.allowedKeyTypes`, with no factory setting narrowing it)
 * holds for every enrollment method alike: from a CSR, from a certificate, just in time at the
 * gateway, and on EST re-enrollment.
 */

const DAY = 86_400_000;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let dir: string;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;
let lineCa: { certificatePem: string; privateKeyPem: string };

type Issuer = { certificatePem: string; privateKeyPem: string };

async function selfSignedCa(factory: string): Promise<Issuer> {
  const pair = generateKeyPair('ec-p256');
  const certificatePem = await issueCertificate({
    profile: 'device-ca',
    subject: { commonName: `${factory} line CA`, organizationalUnit: factory },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + 365 * DAY),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  return { certificatePem, privateKeyPem: pair.privateKeyPem };
}

async function deviceCertificate(issuer: Issuer, factory: string, algorithm: KeyAlgorithm) {
  const uuid = randomUUID();
  const pair = generateKeyPair(algorithm);
  const cert = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: uuid, organizationalUnit: factory },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + 30 * DAY),
    issuer,
  });
  return { uuid, key: pair.privateKeyPem, cert };
}

async function csrFor(uuid: string, factory: string, algorithm: KeyAlgorithm) {
  const pair = generateKeyPair(algorithm);
  return { key: pair.privateKeyPem, csr: await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [OID.clientAuth] }) };
}

function call(method: 'GET' | 'POST', path: string, creds: { key: string; cert: string }, json?: unknown): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: gateway.port, method, path, ca: material.caPem, servername: 'localhost', key: creds.key, cert: creds.cert, agent: false, headers: json ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code }));
      },
    );
    req.on('error', reject);
    req.end(json ? JSON.stringify(json) : undefined);
  });
}

async function refusedWith(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isTollgateError(e) ? e.code : String(e);
  }
  return 'accepted';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-enrollment-policy-'));
  const config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0', TOLLGATE_PKI_ALLOWED_KEY_TYPES: 'ec-p256' }, cwd: dir });
  deps = openAuthority(config);
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'online'));
  await createFactory(deps, system, 'line');
  lineCa = await selfSignedCa('line');
  const { code } = await service.createCaRegistrationCode(operator, 'line');
  const verification = await issueCertificate({
    profile: 'ca-verification',
    subject: { commonName: code },
    publicKey: crypto.createPublicKey(generateKeyPair('ec-p256').publicKeyPem),
    notAfter: new Date(Date.now() + DAY),
    issuer: lineCa,
  });
  await service.addExternalCa(operator, 'line', lineCa.certificatePem, verification);
  await service.updateFactorySettings(operator, 'line', { jit: 'active' });
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log: createLogger('policy-test', 'silent') });
});

afterAll(async () => {
  await gateway?.close();
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the configured key types, for every enrollment method', () => {
  it('just in time: a device key the configuration does not allow is refused and not registered', async () => {
    const p384 = await deviceCertificate(lineCa, 'line', 'ec-p384');
    expect(await call('GET', '/hub-creds/', p384)).toEqual({ status: 403, code: 'key_type_not_allowed' });
    expect(await deps.store.getDevice(p384.uuid)).toBeNull();
    const refusals = await deps.store.listAudit({ action: 'token.refused', target: p384.uuid });
    expect(refusals.map((r) => r.reason)).toEqual(['key_type_not_allowed']);

    const p256 = await deviceCertificate(lineCa, 'line', 'ec-p256');
    expect((await call('GET', '/hub-creds/', p256)).status).toBe(200);
    expect((await deps.store.getDevice(p256.uuid))?.state).toBe('active');
  });

  it('from a certificate and from a CSR: the same refusal', async () => {
    const p384 = await deviceCertificate(lineCa, 'line', 'ec-p384');
    expect(await refusedWith(service.enroll(operator, 'line', { certificate: p384.cert }))).toBe('key_type_not_allowed');
    const csr = await csrFor(randomUUID(), 'online', 'ec-p384');
    expect(await refusedWith(service.enroll(operator, 'online', { csr: csr.csr }))).toBe('key_type_not_allowed');
  });

  it('on re-enrollment: a new key of a type not allowed is refused', async () => {
    const uuid = randomUUID();
    const first = await csrFor(uuid, 'online', 'ec-p256');
    const enrolled = await service.enroll(operator, 'online', { csr: first.csr });
    const renewal = await csrFor(uuid, 'online', 'ec-p384');
    expect(await call('POST', '/device/renew', { key: first.key, cert: enrolled.certificate }, { csr: renewal.csr })).toEqual({ status: 400, code: 'key_type_not_allowed' });
  });
});
