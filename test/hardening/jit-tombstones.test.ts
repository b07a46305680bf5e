import crypto, { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminService, Principal } from '../../admin/service.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { createCsr, generateKeyPair, issueCertificate, OID } from '../../shared/pki/index.js';
import { deviceGet } from '../support/device-client.js';
import { factoryCa, refusalCode as refusal, registerCa, startGatewayAuthority, type GatewayAuthority } from '../support/gateway-authority.js';

/**
 * What comes back after a device is deleted, with just-in-time registration on: nothing. A deleted
 * device leaves a tombstone JIT refuses; a revoked UUID is never used again by any path; JIT never
 * registers what the factory's online CA issued (those devices are enrolled explicitly, test devices
 * among them); a test device never becomes a non-test device.
 */

const DAY = 86_400_000;
const CLIENT_AUTH = OID.clientAuth;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let running: GatewayAuthority;
let deps: GatewayAuthority['deps'];
let service: AdminService;
let external: { certificatePem: string; privateKeyPem: string };

interface Creds {
  uuid: string;
  key: string;
  cert: string;
}

beforeAll(async () => {
  running = await startGatewayAuthority('tombstones');
  ({ deps, service } = running);
  for (const name of ['jitco', 'other']) await createOnlineCa(deps, system, await createFactory(deps, system, name));
  // The factory's own CA, registered with proof of possession; JIT registers what it issues.
  external = await factoryCa({ commonName: 'Jitco line CA', organizationalUnit: 'jitco' });
  await registerCa(service, 'jitco', external);
  await service.updateFactorySettings(operator, 'jitco', { jit: 'active' });
});

afterAll(async () => {
  await running?.close();
});

/** A device certificate `issuer` signs for `uuid` (a new one by default), with a new key. */
async function certificate(issuer: { certificatePem: string; privateKeyPem: string }, uuid: string = randomUUID(), factory = 'jitco'): Promise<Creds> {
  const pair = generateKeyPair('ec-p256');
  const cert = await issueCertificate({ profile: 'device-client', subject: { commonName: uuid, organizationalUnit: factory }, publicKey: crypto.createPublicKey(pair.publicKeyPem), notAfter: new Date(Date.now() + 30 * DAY), issuer });
  return { uuid, key: pair.privateKeyPem, cert };
}

async function onlineCa(factory: string) {
  const f = await deps.store.getFactoryByName(factory);
  const ca = (await deps.store.listDeviceCas({ factoryId: f!.id })).find((c) => c.kind === 'online')!;
  return { certificatePem: ca.certificatePem, privateKeyPem: await deps.keys.get(ca.keyRef!) };
}

async function csrFor(uuid: string, factory = 'jitco') {
  const pair = generateKeyPair('ec-p256');
  return createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
}

const hubCreds = (creds: Creds) => deviceGet({ port: running.gateway.port, caPem: running.material.caPem }, '/hub-creds/', creds);

const registrations = async (uuid: string) => (await deps.store.listAudit({ action: 'device.registered_jit', target: uuid, limit: 100 })).length;

describe('a deleted device', () => {
  it('never comes back just in time, revoked first or not', async () => {
    for (const revokeFirst of [true, false]) {
      const device = await certificate(external);
      expect((await hubCreds(device)).status).toBe(200);
      if (revokeFirst) await service.setDeviceState(operator, 'jitco', device.uuid, 'revoked', 'stolen');
      await service.deleteDevice(operator, 'jitco', device.uuid);
      expect(await hubCreds(device)).toEqual({ status: 403, code: 'device_deleted' });
      // Nor with another certificate naming it.
      expect(await hubCreds(await certificate(external, device.uuid))).toEqual({ status: 403, code: 'device_deleted' });
      expect(await deps.store.getDevice(device.uuid)).toBeNull();
      expect(await registrations(device.uuid)).toBe(1);
    }
  });

  it('was revoked: its UUID is never used again, by any path, in any factory', async () => {
    const device = await certificate(external);
    expect((await hubCreds(device)).status).toBe(200);
    await service.setDeviceState(operator, 'jitco', device.uuid, 'revoked', 'stolen');
    await service.deleteDevice(operator, 'jitco', device.uuid);
    expect(await refusal(service.enroll(operator, 'jitco', { csr: await csrFor(device.uuid) }))).toBe('device_exists');
    expect(await refusal(service.enroll(operator, 'jitco', { certificate: (await certificate(external, device.uuid)).cert }))).toBe('device_exists');
    expect(await refusal(service.enroll(operator, 'other', { csr: await csrFor(device.uuid, 'other') }))).toBe('device_exists');
  });

  it('was not revoked: its factory may enroll it again explicitly, never with a certificate it had', async () => {
    const device = await certificate(external);
    expect((await hubCreds(device)).status).toBe(200);
    await service.deleteDevice(operator, 'jitco', device.uuid);
    expect(await refusal(service.enroll(operator, 'jitco', { certificate: device.cert }))).toBe('certificate_retired');
    expect(await refusal(service.enroll(operator, 'other', { csr: await csrFor(device.uuid, 'other') }))).toBe('device_exists');
    expect(await refusal(service.enroll(operator, 'jitco', { csr: await csrFor(device.uuid) }))).toBe('accepted');
    expect((await hubCreds(device)).status).toBe(403);
  });
});

describe('just-in-time registration', () => {
  it('never registers a certificate the factory\'s online CA issued: those are enrolled explicitly', async () => {
    const unenrolled = await certificate(await onlineCa('jitco'));
    expect(await hubCreds(unenrolled)).toEqual({ status: 403, code: 'device_unknown' });
    expect(await deps.store.getDevice(unenrolled.uuid)).toBeNull();
  });
});

describe('a test device', () => {
  it('never becomes a non-test device, by just-in-time registration or explicit enrollment', async () => {
    const pair = generateKeyPair('ec-p256');
    const uuid = randomUUID();
    const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'jitco' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
    const issued = await service.enroll(operator, 'jitco', { csr, test: true, hours: 2 });
    const test: Creds = { uuid, key: pair.privateKeyPem, cert: issued.certificate };
    expect((await hubCreds(test)).status).toBe(200);
    await service.deleteDevice(operator, 'jitco', uuid);

    expect((await hubCreds(test)).status).toBe(403);
    expect(await deps.store.getDevice(uuid)).toBeNull();
    expect(await refusal(service.enroll(operator, 'jitco', { csr: await csrFor(uuid) }))).toBe('device_uuid_test_only');
    expect(await refusal(service.enroll(operator, 'jitco', { certificate: (await certificate(external, uuid)).cert }))).toBe('device_uuid_test_only');
    const again = await service.enroll(operator, 'jitco', { csr: await csrFor(uuid), test: true, hours: 1 });
    expect(again.device.test).toBe(true);
  });
});
