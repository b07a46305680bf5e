import crypto, { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { runCli } from '../../cli/run.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { loadDeviceConfig, readDeviceSettings } from '../../helper/config.js';
import { runHelper } from '../../helper/run.js';
import { renewalDueAt, renewIfDue } from '../../helper/renew.js';
import { renewalState } from '../../helper/renewal-due.js';
import { createFactory, createOnlineCa, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { isTollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import {
  createCsr,
  derToPem,
  generateKeyPair,
  issueCertificate,
  parseCertificate,
  type KeyAlgorithm,
} from '../../shared/pki/index.js';
import { certificatesOfPkcs7 } from '../../shared/pki/pkcs7.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/**
 * The certificate lifecycle over real TLS: rotation (EST and JSON), just-in-time registration,
 * CA states, proof of possession for external CAs, the factory certificate policy, and renewal
 * driven from the device side.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY = 86_400_000;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };
const log = createLogger('lifecycle-test', 'silent');

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;

interface Credentials {
  uuid: string;
  key: string;
  cert: string;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
  body: { error?: { code: string }; [k: string]: unknown };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-lifecycle-'));
  config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0' }, cwd: dir });
  deps = openAuthority(config);
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
  for (const name of ['acme', 'cas', 'policy']) await createOnlineCa(deps, system, await createFactory(deps, system, name));
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
});

afterAll(async () => {
  await gateway?.close();
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---- helpers --------------------------------------------------------------------------------

async function csrFor(uuid: string, factory: string, algorithm: KeyAlgorithm = 'ec-p256') {
  const pair = generateKeyPair(algorithm);
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  return { csr, key: pair.privateKeyPem };
}

async function enroll(factory = 'acme', extra: { days?: number } = {}): Promise<Credentials> {
  const uuid = randomUUID();
  const { csr, key } = await csrFor(uuid, factory);
  const enrolled = await service.enroll(operator, factory, { csr, ...extra });
  return { uuid, key, cert: enrolled.certificate };
}

function call(method: 'GET' | 'POST', path: string, creds: { key: string; cert: string } | null, body?: { type: string; data: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: gateway.port,
        method,
        path,
        ca: material.caPem,
        servername: 'localhost',
        ...(creds ? { key: creds.key, cert: creds.cert } : {}),
        agent: false,
        headers: body ? { 'content-type': body.type } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: Answer['body'] = {};
          try {
            parsed = JSON.parse(text) as Answer['body'];
          } catch {
            // EST answers are base64, not JSON
          }
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body?.data);
  });
}

const get = (path: string, creds: { key: string; cert: string } | null) => call('GET', path, creds);
const codeOf = (a: { body: { error?: { code: string } } }) => a.body.error?.code;

/** The CSR as RFC 7030 sends it: base64 of the DER, as application/pkcs10. */
function estBody(csrPem: string) {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return { type: 'application/pkcs10', data: der.toString('base64') };
}

function pkcs7Certificates(answer: Answer): string[] {
  return certificatesOfPkcs7(Buffer.from(answer.text.replace(/\s+/g, ''), 'base64')).map((der) => derToPem(der, 'CERTIFICATE'));
}

async function history(factory: string, uuid: string): Promise<string[]> {
  return (await service.getDevice(operator, factory, uuid)).history.map((h) => h.action);
}

async function expectRefused(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isTollgateError(e) ? e.code : e).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

async function selfSignedCa(cn: string, factory: string) {
  const pair = generateKeyPair('ec-p256');
  const pem = await issueCertificate({
    profile: 'device-ca',
    subject: { commonName: cn, organizationalUnit: factory },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + 365 * DAY),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  return { certificatePem: pem, privateKeyPem: pair.privateKeyPem };
}

async function verificationCertificate(commonName: string, issuer: { certificatePem: string; privateKeyPem: string }) {
  return issueCertificate({
    profile: 'ca-verification',
    subject: { commonName },
    publicKey: crypto.createPublicKey(generateKeyPair('ec-p256').publicKeyPem),
    notAfter: new Date(Date.now() + DAY),
    issuer,
  });
}

/** Registers an external CA the way a factory would: code, then proof signed by the CA key. */
async function addExternalCa(factory: string, ca: { certificatePem: string; privateKeyPem: string }) {
  const { code } = await service.createCaRegistrationCode(operator, factory);
  return service.addExternalCa(operator, factory, ca.certificatePem, await verificationCertificate(code, ca));
}

async function deviceCertificate(issuer: { certificatePem: string; privateKeyPem: string }, uuid: string, factory: string, algorithm: KeyAlgorithm = 'ec-p256') {
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

// ---- rotation -------------------------------------------------------------------------------

describe('certificate rotation over mutual TLS', () => {
  it('re-enrolls through EST: the old certificate works until the new one is used, then is superseded', async () => {
    const old = await enroll();
    expect((await get('/hub-creds/', old)).status).toBe(200);

    const cacerts = await get('/.well-known/est/cacerts', old);
    expect(cacerts.status).toBe(200);
    expect(cacerts.contentType).toMatch(/^application\/pkcs7-mime; ?smime-type=certs-only/);
    const [caPem] = pkcs7Certificates(cacerts);
    expect(parseCertificate(caPem!).isCa).toBe(true);

    const { csr, key } = await csrFor(old.uuid, 'acme');
    const res = await call('POST', '/.well-known/est/simplereenroll', old, estBody(csr));
    expect(res.status, res.text).toBe(200);
    expect(res.contentType).toMatch(/^application\/pkcs7-mime; ?smime-type=certs-only/);
    const issued = pkcs7Certificates(res);
    expect(issued).toHaveLength(1);
    const renewed = { uuid: old.uuid, key, cert: issued[0]! };
    const info = parseCertificate(renewed.cert);
    expect([info.subject.commonName, info.subject.organizationalUnit]).toEqual([old.uuid, 'acme']);
    expect(info.fingerprint256).not.toBe(parseCertificate(old.cert).fingerprint256);

    // Until the device uses the new certificate, the old one keeps working.
    expect((await get('/hub-creds/', old)).status).toBe(200);
    const fresh = await get('/hub-creds/', renewed);
    expect(fresh.status, fresh.text).toBe(200);
    expect(fresh.body.Username).toBe(old.uuid);

    const stale = await get('/hub-creds/', old);
    expect([stale.status, codeOf(stale)]).toEqual([403, 'certificate_superseded']);
    // Tokens keep flowing on the new certificate.
    expect((await get('/hub-creds/', renewed)).status).toBe(200);

    const shown = await service.getDevice(operator, 'acme', old.uuid);
    expect(shown.certificate.fingerprint256).toBe(info.fingerprint256);
    expect(await history('acme', old.uuid)).toEqual(expect.arrayContaining(['device.enrolled', 'device.renewed', 'device.certificate_superseded']));
  });

  it('keeps a superseded certificate out even after its device is deleted, with just-in-time registration on', async () => {
    await createFactory(deps, system, 'rotjit');
    await service.createOnlineCa(operator, 'rotjit', {});
    await service.updateFactorySettings(operator, 'rotjit', { jit: 'active' });
    const old = await enroll('rotjit');
    const { csr, key } = await csrFor(old.uuid, 'rotjit');
    const res = await call('POST', '/.well-known/est/simplereenroll', old, estBody(csr));
    expect(res.status, res.text).toBe(200);
    const renewed = { uuid: old.uuid, key, cert: pkcs7Certificates(res)[0]! };
    expect((await get('/hub-creds/', renewed)).status).toBe(200); // the old certificate is now superseded

    await service.deleteDevice(operator, 'rotjit', old.uuid);
    // Neither of its certificates brings it back: the device is deleted, and says so.
    for (const certificate of [old, renewed]) {
      const stale = await get('/hub-creds/', certificate);
      expect([stale.status, codeOf(stale)]).toEqual([403, 'device_deleted']);
    }
    await expectRefused(service.getDevice(operator, 'rotjit', old.uuid), 'device_not_found');
  });

  it('accepts a PEM body on EST and renews as JSON on /device/renew', async () => {
    const device = await enroll();
    const first = await csrFor(device.uuid, 'acme');
    const est = await call('POST', '/.well-known/est/simplereenroll', device, { type: 'application/pkcs10', data: first.csr });
    expect(est.status, est.text).toBe(200);

    // The device never picked the EST answer up and renews again with its current certificate:
    // the unused certificate is retired, the new one issued.
    const second = await csrFor(device.uuid, 'acme');
    const res = await call('POST', '/device/renew', device, { type: 'application/json', data: JSON.stringify({ csr: second.csr }) });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ certificate: expect.stringContaining('BEGIN CERTIFICATE'), caCertificate: expect.stringContaining('BEGIN CERTIFICATE') });
    expect(Date.parse(res.body.notAfter as string)).toBeGreaterThan(Date.now() + 300 * DAY);

    const abandoned = await get('/hub-creds/', { key: first.key, cert: pkcs7Certificates(est)[0]! });
    expect([abandoned.status, codeOf(abandoned)]).toEqual([403, 'certificate_superseded']);
    expect((await get('/hub-creds/', { key: second.key, cert: res.body.certificate as string })).status).toBe(200);
  });

  it('refuses a rotation to another subject: 400 subject_mismatch', async () => {
    const device = await enroll();
    for (const [cn, ou] of [
      [randomUUID(), 'acme'],
      [device.uuid, 'cas'],
    ] as const) {
      const { csr } = await csrFor(cn, ou);
      const res = await call('POST', '/.well-known/est/simplereenroll', device, estBody(csr));
      expect([res.status, codeOf(res)]).toEqual([400, 'subject_mismatch']);
    }
    expect((await get('/hub-creds/', device)).status).toBe(200);
    const refusals = (await service.getDevice(operator, 'acme', device.uuid)).history.filter((h) => h.action === 'device.renew_refused');
    expect(refusals.map((h) => [h.outcome, h.reason])).toEqual([
      ['denied', 'subject_mismatch'],
      ['denied', 'subject_mismatch'],
    ]);
  });

  it('refuses a body that is no CSR, an oversized one, a wrong content type, and a client without a certificate', async () => {
    const device = await enroll();
    const garbage = await call('POST', '/.well-known/est/simplereenroll', device, { type: 'application/pkcs10', data: 'not base64!' });
    expect([garbage.status, codeOf(garbage)]).toEqual([400, 'csr_invalid']);
    const big = await call('POST', '/.well-known/est/simplereenroll', device, { type: 'application/pkcs10', data: 'A'.repeat(20_000) });
    expect([big.status, codeOf(big)]).toEqual([413, 'body_too_large']);
    const form = await call('POST', '/.well-known/est/simplereenroll', device, { type: 'application/x-www-form-urlencoded', data: 'csr=x' });
    expect([form.status, codeOf(form)]).toEqual([400, 'content_type_unsupported']);
    const { csr } = await csrFor(device.uuid, 'acme');
    const anonymous = await call('POST', '/.well-known/est/simplereenroll', null, estBody(csr));
    expect([anonymous.status, codeOf(anonymous)]).toEqual([401, 'certificate_required']);
  });

  it('does not renew a test device (short-lived on purpose): 409 test_certificate_not_renewable', async () => {
    const uuid = randomUUID();
    const { csr, key } = await csrFor(uuid, 'acme');
    const issued = await service.enroll(operator, 'acme', { csr, test: true, hours: 1 });
    const device = { uuid, key, cert: issued.certificate };
    const renewal = await csrFor(uuid, 'acme');
    const res = await call('POST', '/.well-known/est/simplereenroll', device, estBody(renewal.csr));
    expect([res.status, codeOf(res)]).toEqual([409, 'test_certificate_not_renewable']);
    expect((await get('/hub-creds/', device)).status).toBe(200);
  });

  it('refuses re-enrollment of a device enrolled from an external CA: 409 reenroll_not_supported', async () => {
    const ca = await selfSignedCa('ACME external line', 'acme');
    await addExternalCa('acme', ca);
    const device = await deviceCertificate(ca, randomUUID(), 'acme');
    await service.enroll(operator, 'acme', { certificate: device.cert });
    expect((await get('/hub-creds/', device)).status).toBe(200);
    const { csr } = await csrFor(device.uuid, 'acme');
    const res = await call('POST', '/.well-known/est/simplereenroll', device, estBody(csr));
    expect([res.status, codeOf(res)]).toEqual([409, 'reenroll_not_supported']);
  });
});

// ---- just-in-time registration ----------------------------------------------------------------

describe('just-in-time registration', () => {
  let ca: { certificatePem: string; privateKeyPem: string };

  beforeAll(async () => {
    await createFactory(deps, system, 'jit');
    ca = await selfSignedCa('JIT line CA', 'jit');
    await addExternalCa('jit', ca);
  });

  it('is off by default: an unknown device is refused with 403 device_unknown', async () => {
    const device = await deviceCertificate(ca, randomUUID(), 'jit');
    const res = await get('/hub-creds/', device);
    expect([res.status, codeOf(res)]).toEqual([403, 'device_unknown']);
    expect((await service.getFactorySettings(operator, 'jit')).jitMode).toBe('off');
  });

  it('active: registers the device on first contact and gives it a token', async () => {
    await service.updateFactorySettings(operator, 'jit', { jit: 'active' });
    const device = await deviceCertificate(ca, randomUUID(), 'jit');
    const res = await get('/hub-creds/', device);
    expect(res.status, res.text).toBe(200);
    const shown = await service.getDevice(operator, 'jit', device.uuid);
    expect(shown.state).toBe('active');
    expect(shown.history.map((h) => h.action)).toContain('device.registered_jit');

    // The same UUID with another key is somebody else, never a re-registration.
    const impostor = await deviceCertificate(ca, device.uuid, 'jit');
    const refused = await get('/hub-creds/', impostor);
    expect([refused.status, codeOf(refused)]).toEqual([403, 'certificate_mismatch']);
  });

  it('pending: registers the device as pending until an admin enables it', async () => {
    await service.updateFactorySettings(operator, 'jit', { jit: 'pending' });
    const device = await deviceCertificate(ca, randomUUID(), 'jit');
    const first = await get('/hub-creds/', device);
    expect([first.status, codeOf(first)]).toEqual([403, 'device_pending']);
    const again = await get('/hub-creds/', device);
    expect([again.status, codeOf(again)]).toEqual([403, 'device_pending']);
    await service.setDeviceState(operator, 'jit', device.uuid, 'active', 'checked');
    expect((await get('/hub-creds/', device)).status).toBe(200);
  });

  it('never registers into another factory: the OU must name the factory whose CA issued it', async () => {
    await service.updateFactorySettings(operator, 'jit', { jit: 'active' });
    const device = await deviceCertificate(ca, randomUUID(), 'acme');
    const res = await get('/hub-creds/', device);
    // Judged against acme's CAs only, which did not issue it.
    expect([res.status, codeOf(res)]).toEqual([401, 'certificate_untrusted']);
  });

  it('off again: unknown devices are refused', async () => {
    await service.updateFactorySettings(operator, 'jit', { jit: 'off' });
    const device = await deviceCertificate(ca, randomUUID(), 'jit');
    expect(codeOf(await get('/hub-creds/', device))).toBe('device_unknown');
  });
});

// ---- CA states ----------------------------------------------------------------------------------

describe('CA disable versus revoke', () => {
  it('disabled: devices keep working; no enrollment, renewal or JIT under it. revoked: every device is cut off', async () => {
    const onlineDevice = await enroll('cas');
    const external = await selfSignedCa('CAS external', 'cas');
    const extCa = await addExternalCa('cas', external);
    await service.updateFactorySettings(operator, 'cas', { jit: 'active' });
    const jitDevice = await deviceCertificate(external, randomUUID(), 'cas');
    expect((await get('/hub-creds/', jitDevice)).status).toBe(200);

    const online = (await service.listCas(operator, 'cas')).items.find((c) => c.kind === 'online')!;
    await service.setCaState(operator, 'cas', online.id, 'disabled', 'line closed');
    await service.setCaState(operator, 'cas', extCa.id, 'disabled', 'line closed');

    expect((await get('/hub-creds/', onlineDevice)).status).toBe(200);
    expect((await get('/hub-creds/', jitDevice)).status).toBe(200);
    const { csr } = await csrFor(onlineDevice.uuid, 'cas');
    const renewal = await call('POST', '/.well-known/est/simplereenroll', onlineDevice, estBody(csr));
    expect([renewal.status, codeOf(renewal)]).toEqual([409, 'ca_not_active']);
    await expectRefused(enroll('cas'), 'no_online_ca');
    const late = await deviceCertificate(external, randomUUID(), 'cas');
    expect(codeOf(await get('/hub-creds/', late))).toBe('device_unknown');

    await service.setCaState(operator, 'cas', online.id, 'revoked', 'key lost');
    await service.setCaState(operator, 'cas', extCa.id, 'revoked', 'key lost');
    for (const device of [onlineDevice, jitDevice]) {
      const res = await get('/hub-creds/', device);
      expect([res.status, codeOf(res)]).toEqual([403, 'ca_revoked']);
    }
  });
});

// ---- proof of possession --------------------------------------------------------------------------

describe('proof of possession for external CAs', () => {
  it('refuses a missing proof, a wrong CN, a proof signed by another key, and a reused code', async () => {
    const ca = await selfSignedCa('PoP CA', 'acme');
    const other = await selfSignedCa('Someone else', 'acme');
    await expectRefused(service.addExternalCa(operator, 'acme', ca.certificatePem), 'proof_of_possession_failed');

    const { code } = await service.createCaRegistrationCode(operator, 'acme');
    expect(code).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await expectRefused(service.addExternalCa(operator, 'acme', ca.certificatePem, await verificationCertificate('not-the-code', ca)), 'proof_of_possession_failed');
    await expectRefused(service.addExternalCa(operator, 'acme', ca.certificatePem, await verificationCertificate(code, other)), 'proof_of_possession_failed');
    // Failed attempts do not use the code up; a success does.
    await service.addExternalCa(operator, 'acme', ca.certificatePem, await verificationCertificate(code, ca));
    await expectRefused(service.addExternalCa(operator, 'acme', other.certificatePem, await verificationCertificate(code, other)), 'proof_of_possession_failed');
    // A code is the factory's own.
    const foreign = await service.createCaRegistrationCode(operator, 'cas');
    await expectRefused(service.addExternalCa(operator, 'acme', other.certificatePem, await verificationCertificate(foreign.code, other)), 'proof_of_possession_failed');
  });
});

// ---- certificate policy ---------------------------------------------------------------------------

describe('factory certificate policy', () => {
  it('caps lifetimes and key types at issue time', async () => {
    await service.updateFactorySettings(operator, 'policy', { certMaxDays: 30, testCertMaxHours: 2, keyTypes: ['ec-p256'] });
    await expectRefused(enroll('policy', { days: 31 }), 'lifetime_exceeds_policy');
    const device = await enroll('policy');
    expect(parseCertificate(device.cert).notAfter.getTime()).toBeLessThanOrEqual(Date.now() + 30 * DAY);

    const rsa = await csrFor(randomUUID(), 'policy', 'rsa-2048');
    await expectRefused(service.enroll(operator, 'policy', { csr: rsa.csr }), 'key_type_not_allowed');
    const test = await csrFor(randomUUID(), 'policy');
    await expectRefused(service.enroll(operator, 'policy', { csr: test.csr, test: true, hours: 3 }), 'lifetime_exceeds_policy');

    // Renewal applies the same policy.
    const rsaRenewal = await csrFor(device.uuid, 'policy', 'rsa-2048');
    const refused = await call('POST', '/device/renew', device, { type: 'application/json', data: JSON.stringify({ csr: rsaRenewal.csr }) });
    expect([refused.status, codeOf(refused)]).toEqual([400, 'key_type_not_allowed']);

    const settings = await service.getFactorySettings(operator, 'policy');
    expect(settings).toMatchObject({ certMaxDays: 30, testCertMaxHours: 2, keyTypes: ['ec-p256'] });
    await expectRefused(service.updateFactorySettings(operator, 'policy', { keyTypes: ['dsa-1024'] }), 'key_types_invalid');
    await expectRefused(service.updateFactorySettings(operator, 'policy', { jit: 'sometimes' }), 'jit_invalid');
  });
});

// ---- renewal on the device --------------------------------------------------------------------------

describe('renewal on the device', () => {
  function deviceDir(device: Credentials): string {
    const d = mkdtempSync(join(dir, 'device-'));
    writeFileSync(join(d, 'device.pem'), device.cert);
    writeFileSync(join(d, 'device.key'), device.key, { mode: 0o600 });
    writeFileSync(join(d, 'gateway-ca.pem'), material.caPem);
    writeFileSync(
      join(d, 'device.json'),
      JSON.stringify({ gateway: `https://127.0.0.1:${gateway.port}`, certificate: 'device.pem', privateKey: 'device.key', caBundle: 'gateway-ca.pem', registries: ['registry.test:5000'] }),
    );
    return d;
  }

  it('renews once about two thirds of the lifetime have passed, and replaces the files', async () => {
    const device = await enroll('acme', { days: 30 });
    const d = deviceDir(device);
    const settings = await readDeviceSettings(join(d, 'device.json'));
    const info = parseCertificate(device.cert);
    const start = info.notBefore.getTime();
    const life = info.notAfter.getTime() - start;
    // The jitter moves the moment by at most 5% of the lifetime either way.
    expect(Math.abs(renewalDueAt(start, start + life, 0) - (start + life * (2 / 3 - 0.05)))).toBeLessThan(1000);
    expect(Math.abs(renewalDueAt(start, start + life, 0.999999) - (start + life * (2 / 3 + 0.05)))).toBeLessThan(1000);

    const early = await renewIfDue(settings, { now: () => start + life * 0.6, random: () => 0.5 });
    expect(early.renewed).toBe(false);
    expect(readFileSync(join(d, 'device.pem'), 'utf8')).toBe(device.cert);

    const due = await renewIfDue(settings, { now: () => start + life * 0.7, random: () => 0.5 });
    expect(due.renewed).toBe(true);
    const cert = readFileSync(join(d, 'device.pem'), 'utf8');
    const key = readFileSync(join(d, 'device.key'), 'utf8');
    expect(parseCertificate(cert).fingerprint256).toBe(due.fingerprint256);
    expect(statSync(join(d, 'device.key')).mode & 0o777).toBe(0o600);
    // Confirmed with one use of the new certificate: the backups are gone, the old one is superseded.
    expect(existsSync(join(d, 'device.pem.bak'))).toBe(false);
    expect(existsSync(join(d, 'device.key.bak'))).toBe(false);
    expect(codeOf(await get('/hub-creds/', device))).toBe('certificate_superseded');
    expect((await get('/hub-creds/', { key, cert })).status).toBe(200);
  });

  it('renews once when several processes find the certificate due at the same time', async () => {
    const device = await enroll();
    const d = deviceDir(device);
    const settings = await readDeviceSettings(join(d, 'device.json'));
    const results = await Promise.all([1, 2, 3].map(() => renewIfDue(settings, { force: true })));
    expect(results.filter((r) => r.renewed)).toHaveLength(1);
    const cert = readFileSync(join(d, 'device.pem'), 'utf8');
    const key = readFileSync(join(d, 'device.key'), 'utf8');
    expect((await get('/hub-creds/', { key, cert })).status).toBe(200);
    expect(existsSync(join(d, 'device.pem.renew.lock'))).toBe(false);
  });

  it('tollgate device renew --force renews at once', async () => {
    const device = await enroll();
    const d = deviceDir(device);
    let out = '';
    let err = '';
    const code = await runCli(['device', 'renew', '--device-config', join(d, 'device.json'), '--force', '--json'], {
      io: { stdout: (t) => (out += t), stderr: (t) => (err += t) },
      env: {},
    });
    expect(code, err).toBe(0);
    const result = JSON.parse(out) as { renewed: boolean; fingerprint256: string };
    expect(result.renewed).toBe(true);
    expect(parseCertificate(readFileSync(join(d, 'device.pem'), 'utf8')).fingerprint256).toBe(result.fingerprint256);

    // Without --force, a fresh certificate is not yet due. The device.json may also come from the
    // environment, as for the credential helper.
    out = '';
    const fromEnv = { io: { stdout: (t: string) => (out += t), stderr: () => undefined }, env: { TOLLGATE_DEVICE_CONFIG: join(d, 'device.json') } };
    expect(await runCli(['device', 'renew', '--json'], fromEnv)).toBe(0);
    expect((JSON.parse(out) as { renewed: boolean }).renewed).toBe(false);

    // The old spelling collided with the global --config: it is refused with the new name.
    err = '';
    expect(await runCli(['device', 'renew', '--config', join(d, 'device.json')], { io: { stdout: () => undefined, stderr: (t) => (err += t) }, env: {} })).toBe(2);
    expect(err).toMatch(/takes the device\.json as --device-config <file>; --config names a Tollgate configuration.*\(usage_option_renamed\)/);
  });

  it('the credential helper renews before fetching a token, and a failed renewal does not fail get', async () => {
    const device = await enroll('acme', { days: 30 });
    const d = deviceDir(device);
    const info = parseCertificate(device.cert);
    const at = info.notBefore.getTime() + (info.notAfter.getTime() - info.notBefore.getTime()) * 0.8;
    const env = { TOLLGATE_DEVICE_CONFIG: join(d, 'device.json'), TOLLGATE_CACHE_DIR: join(d, 'cache'), TOLLGATE_HELPER_DEBUG: '1' };
    let debug = '';
    const got = await runHelper(['get'], 'registry.test:5000', env, { now: () => at, stderr: (t) => (debug += t) });
    expect(got.exitCode, got.stdout + debug).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ Username: device.uuid });
    expect(debug).toContain('certificate renewed');
    expect(parseCertificate(readFileSync(join(d, 'device.pem'), 'utf8')).fingerprint256).not.toBe(info.fingerprint256);

    // The gateway refuses the next renewal (its CA no longer issues): get still answers, and says why on debug only.
    const other = await enroll('policy');
    const od = deviceDir(other);
    const policyCa = (await service.listCas(operator, 'policy')).items.find((c) => c.kind === 'online')!;
    await service.setCaState(operator, 'policy', policyCa.id, 'disabled', 'no more renewals');
    try {
      let refusedDebug = '';
      const oi = parseCertificate(other.cert);
      const late = oi.notBefore.getTime() + (oi.notAfter.getTime() - oi.notBefore.getTime()) * 0.8;
      const res = await runHelper(['get'], 'registry.test:5000', { ...env, TOLLGATE_DEVICE_CONFIG: join(od, 'device.json'), TOLLGATE_CACHE_DIR: join(od, 'cache') }, {
        now: () => late,
        stderr: (t) => (refusedDebug += t),
      });
      expect(res.exitCode, res.stdout + refusedDebug).toBe(0);
      expect(refusedDebug).toMatch(/certificate renewal failed: ca_not_active/);
      expect(readFileSync(join(od, 'device.pem'), 'utf8')).toBe(other.cert);
    } finally {
      await service.setCaState(operator, 'policy', policyCa.id, 'active', null);
    }
  });
});

describe('renewal refused for good', () => {
  it('a test certificate past two thirds of its life asks the gateway once, then every get goes without asking', async () => {
    const uuid = randomUUID();
    const { csr, key } = await csrFor(uuid, 'acme');
    const issued = await service.enroll(operator, 'acme', { csr, test: true, hours: 2 });
    const d = mkdtempSync(join(dir, 'test-device-'));
    writeFileSync(join(d, 'device.pem'), issued.certificate);
    writeFileSync(join(d, 'device.key'), key, { mode: 0o600 });
    writeFileSync(join(d, 'gateway-ca.pem'), material.caPem);
    writeFileSync(
      join(d, 'device.json'),
      JSON.stringify({ gateway: `https://127.0.0.1:${gateway.port}`, certificate: 'device.pem', privateKey: 'device.key', caBundle: 'gateway-ca.pem', registries: ['registry.test:5000'] }),
    );
    const info = parseCertificate(issued.certificate);
    const late = info.notBefore.getTime() + (info.notAfter.getTime() - info.notBefore.getTime()) * 0.8;
    const refusals = async () => (await deps.store.listAudit({ target: uuid, action: 'device.renew_refused', limit: 100 })).length;
    const get = async () => {
      let debug = '';
      // A fresh cache each time: every get reaches the point where it fetches a token.
      const env = { TOLLGATE_DEVICE_CONFIG: join(d, 'device.json'), TOLLGATE_CACHE_DIR: mkdtempSync(join(d, 'cache-')), TOLLGATE_HELPER_DEBUG: '1' };
      const res = await runHelper(['get'], 'registry.test:5000', env, { now: () => late, stderr: (t) => (debug += t) });
      expect(res.exitCode, res.stdout + debug).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ Username: uuid });
      return debug;
    };

    expect(await get()).toMatch(/certificate renewal failed: test_certificate_not_renewable/);
    expect(await refusals()).toBe(1);
    for (let i = 0; i < 3; i++) {
      const debug = await get();
      expect(debug).toContain('certificate renewal not asked for: the gateway refused it for this certificate (test_certificate_not_renewable)');
      expect(debug).not.toContain('renewing certificate');
    }
    expect(await refusals()).toBe(1);
    expect(readFileSync(join(d, 'device.pem'), 'utf8')).toBe(issued.certificate);

    // The refusal belongs to that certificate: another one in its place is judged afresh.
    const identity = await loadDeviceConfig(join(d, 'device.json'));
    expect((await renewalState(identity, late, 0.5)).refused).toBe('test_certificate_not_renewable');
    const renewed = { ...identity, certificate: { ...identity.certificate, fingerprint256: '0'.repeat(64) } };
    expect(await renewalState(renewed, late, 0.5)).toMatchObject({ due: true, refused: null });
  });
});

describe('tollgate commands for the lifecycle', () => {
  async function tollgate(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const file = join(dir, 'tollgate.yml');
    writeFileSync(file, `dataDir: ${JSON.stringify(config.dataDir)}\npkiDir: ${JSON.stringify(config.pkiDir)}\nlog:\n  level: silent\n`);
    let out = '';
    let err = '';
    const code = await runCli([...args, '--config', file], { io: { stdout: (t) => (out += t), stderr: (t) => (err += t) }, env: {} });
    return { code, out, err };
  }

  it('factory settings shows and changes the policy; ca registration-code and ca add --verification-cert register an external CA', async () => {
    await createFactory(deps, system, 'clif');
    const changed = await tollgate(['factory', 'settings', 'clif', '--jit', 'pending', '--cert-max-days', '60', '--key-types', 'ec-p256,rsa-2048', '--json']);
    expect(changed.code, changed.err).toBe(0);
    expect(JSON.parse(changed.out)).toMatchObject({ jitMode: 'pending', certMaxDays: 60, keyTypes: ['ec-p256', 'rsa-2048'] });
    const shown = await tollgate(['factory', 'settings', 'clif']);
    expect(shown.out).toMatch(/jit:\s+pending/);
    const bad = await tollgate(['factory', 'settings', 'clif', '--jit', 'sometimes']);
    expect([bad.code, bad.err]).toEqual([2, expect.stringContaining('(jit_invalid)')]);

    const ca = await selfSignedCa('CLI external', 'clif');
    const code = await tollgate(['ca', 'registration-code', 'clif', '--json']);
    expect(code.code, code.err).toBe(0);
    const { code: registration } = JSON.parse(code.out) as { code: string };
    const caFile = join(dir, 'clif-ca.pem');
    const verificationFile = join(dir, 'clif-verification.pem');
    writeFileSync(caFile, ca.certificatePem);
    writeFileSync(verificationFile, await verificationCertificate(registration, ca));
    const missing = await tollgate(['ca', 'add', 'clif', '--cert', caFile]);
    expect(missing.err).toContain('(proof_of_possession_failed)');
    const added = await tollgate(['ca', 'add', 'clif', '--cert', caFile, '--verification-cert', verificationFile, '--json']);
    expect(added.code, added.err).toBe(0);
    expect(JSON.parse(added.out)).toMatchObject({ kind: 'external', commonName: 'CLI external' });
  });
});
