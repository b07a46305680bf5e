import crypto, { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../admin/service.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { createCsr, generateKeyPair, issueCertificate, OID, parseCertificate, type KeyAlgorithm } from '../../shared/pki/index.js';
import { deviceGet } from '../support/device-client.js';
import { factoryCa, registerCa, startGatewayAuthority, type GatewayAuthority } from '../support/gateway-authority.js';

/**
 * A factory admin's settings against the operator's configuration: a factory may only narrow the
 * certificate policy (lifetime caps, key types), through the admin API, and every path that makes
 * a device (CSR, test device, certificate, just in time) applies the narrowed policy.
 */

const DAY = 86_400_000;
const CLIENT_AUTH = OID.clientAuth;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };
/** The operator's caps in this test. */
const PKI = { deviceCertDays: 30, testCertMaxHours: 4, allowedKeyTypes: ['ec-p256', 'ec-p384'] };

let running: GatewayAuthority;
let deps: GatewayAuthority['deps'];
let app: GatewayAuthority['app'];
let admin: string;

beforeAll(async () => {
  running = await startGatewayAuthority('factory-policy', {
    TOLLGATE_PKI_DEVICE_CERT_DAYS: String(PKI.deviceCertDays),
    TOLLGATE_PKI_TEST_CERT_MAX_HOURS: String(PKI.testCertMaxHours),
    TOLLGATE_PKI_ALLOWED_KEY_TYPES: PKI.allowedKeyTypes.join(','),
  });
  ({ deps, app } = running);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'acme'));
  admin = (await running.service.createToken(operator, 'acme', { scopes: ['devices:read', 'devices:write', 'devices:test'] })).secret;
});

afterAll(async () => {
  await running?.close();
});

const patch = (body: unknown) => request(app).patch('/v1/factories/acme/settings').set('Authorization', `Bearer ${admin}`).send(body as object);
const enroll = (body: unknown) => request(app).post('/v1/factories/acme/devices').set('Authorization', `Bearer ${admin}`).send(body as object);

async function csr(algorithm: KeyAlgorithm = 'ec-p256') {
  const uuid = randomUUID();
  const pair = generateKeyPair(algorithm);
  return { csr: await createCsr({ subject: { commonName: uuid, organizationalUnit: 'acme' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] }) };
}

const hubCreds = (creds: { key: string; cert: string }) => deviceGet({ port: running.gateway.port, caPem: running.material.caPem }, '/hub-creds/', creds);

describe('factory settings only narrow the operator\'s certificate policy', () => {
  it.each([
    [{ certMaxDays: 3650 }, 'cert_max_days_invalid', 'between 1 and 30, the operator\'s limit'],
    [{ testCertMaxHours: 720 }, 'test_cert_max_hours_invalid', 'between 1 and 4, the operator\'s limit'],
    [{ keyTypes: ['ec-p256', 'rsa-2048'] }, 'key_types_invalid', 'key type "rsa-2048" is not allowed here; the operator allows ec-p256, ec-p384'],
  ])('refuses %j with a message naming the operator\'s limit, and changes nothing', async (body, code, message) => {
    const before = (await request(app).get('/v1/factories/acme/settings').set('Authorization', `Bearer ${admin}`)).body as unknown;
    const res = await patch(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toContain(message);
    expect((await request(app).get('/v1/factories/acme/settings').set('Authorization', `Bearer ${admin}`)).body).toEqual(before);
  });

  it('accepts narrower values and shows them as the policy in force', async () => {
    const res = await patch({ certMaxDays: 10, testCertMaxHours: 2, keyTypes: ['ec-p256'] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ certMaxDays: 10, testCertMaxHours: 2, keyTypes: ['ec-p256'] });
    expect((await patch({ certMaxDays: null, testCertMaxHours: null, keyTypes: null })).body).toMatchObject({ certMaxDays: 30, testCertMaxHours: 4, keyTypes: PKI.allowedKeyTypes });
  });

  it('never issues beyond the operator\'s caps, even with wider settings stored before the configuration was narrowed', async () => {
    const acme = await deps.store.getFactoryByName('acme');
    await deps.store.putFactorySettings(
      { factoryId: acme!.id, jitMode: 'off', certMaxDays: 3650, testCertMaxHours: 720, keyTypes: ['ec-p256', 'rsa-2048'], updatedAt: Date.now() },
      { actor: 'system', action: 'factory.settings_changed', outcome: 'success', factoryId: acme!.id },
    );
    try {
      expect((await request(app).get('/v1/factories/acme/settings').set('Authorization', `Bearer ${admin}`)).body).toMatchObject({ certMaxDays: 30, testCertMaxHours: 4, keyTypes: ['ec-p256'] });
      const long = await enroll({ ...(await csr()), days: 3650 });
      expect([long.status, long.body.error?.code]).toEqual([400, 'lifetime_exceeds_policy']);
      const byDefault = await enroll(await csr());
      expect(byDefault.status).toBe(201);
      const lifetime = parseCertificate(byDefault.body.certificate as string).notAfter.getTime() - Date.now();
      expect(lifetime).toBeLessThanOrEqual(PKI.deviceCertDays * DAY);
      const test = await enroll({ ...(await csr()), test: true, hours: 48 });
      expect([test.status, test.body.error?.code]).toEqual([400, 'lifetime_exceeds_policy']);
      const rsa = await enroll(await csr('rsa-2048'));
      expect([rsa.status, rsa.body.error?.code]).toEqual([400, 'key_type_not_allowed']);
    } finally {
      await patch({ certMaxDays: null, testCertMaxHours: null, keyTypes: null });
    }
  });

  it('registers nobody just in time with a key type the configuration does not allow', async () => {
    expect((await patch({ jit: 'active' })).status).toBe(200);
    // Just in time registers what the factory's own CA issued.
    const issuer = await factoryCa({ commonName: 'Acme line CA', organizationalUnit: 'acme' });
    await registerCa(running.service, 'acme', issuer);
    const device = async (algorithm: KeyAlgorithm) => {
      const pair = generateKeyPair(algorithm);
      const uuid = randomUUID();
      const cert = await issueCertificate({ profile: 'device-client', subject: { commonName: uuid, organizationalUnit: 'acme' }, publicKey: crypto.createPublicKey(pair.publicKeyPem), notAfter: new Date(Date.now() + 10 * DAY), issuer });
      return { uuid, key: pair.privateKeyPem, cert };
    };
    const rsa = await device('rsa-2048');
    expect(await hubCreds(rsa)).toEqual({ status: 403, code: 'key_type_not_allowed' });
    expect(await deps.store.getDevice(rsa.uuid)).toBeNull();
    const ec = await device('ec-p256');
    expect((await hubCreds(ec)).status).toBe(200);
  });
});
