import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../admin/app.js';
import type { AdminService, Principal } from '../../admin/service.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { createLogger } from '../../shared/log.js';
import { RequestLimiter } from '../../shared/ops/rate-limit.js';
import { createCsr, generateKeyPair, OID } from '../../shared/pki/index.js';
import { deviceGet } from '../support/device-client.js';
import { startGatewayAuthority, type GatewayAuthority } from '../support/gateway-authority.js';

/**
 * The audit trail has every refusal of a credential whose factory is known, under that factory:
 * the gateway's (a device refused, a certificate of a revoked CA) and the admin API's (another
 * factory, a missing scope, a revoked token), so `tollgate audit <factory>` and `device show` see
 * them. What nobody can be held to (no token, an unknown one) is recorded without a factory.
 */

const CLIENT_AUTH = OID.clientAuth;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let running: GatewayAuthority;
let deps: GatewayAuthority['deps'];
let service: AdminService;
let acmeId: string;

beforeAll(async () => {
  running = await startGatewayAuthority('audit-refusals');
  ({ deps, service } = running);
  const acme = await createFactory(deps, system, 'acme');
  acmeId = acme.id;
  await createOnlineCa(deps, system, acme);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'other'));
});

afterAll(async () => {
  await running?.close();
});

async function enrolledDevice(factory = 'acme') {
  const uuid = randomUUID();
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const enrolled = await service.enroll(operator, factory, { csr });
  return { uuid, key: pair.privateKeyPem, cert: enrolled.certificate };
}

const hubCreds = (creds: { key: string; cert: string }) => deviceGet({ port: running.gateway.port, caPem: running.material.caPem }, '/hub-creds/', creds);

/** The newest audit record of `action` with `reason`. */
async function refusal(action: string, reason: string) {
  const records = await deps.store.listAudit({ action, limit: 1000, order: 'desc' });
  return records.find((r) => r.reason === reason);
}

describe('gateway refusals', () => {
  it('are recorded under the device\'s factory, so that the factory\'s trail and device show have them', async () => {
    const device = await enrolledDevice();
    await service.setDeviceState(operator, 'acme', device.uuid, 'disabled', 'maintenance');
    expect(await hubCreds(device)).toEqual({ status: 403, code: 'device_disabled' });
    expect(await refusal('token.refused', 'device_disabled')).toMatchObject({ actor: `device:${device.uuid}`, factoryId: acmeId, target: device.uuid });
    const trail = await deps.store.listAudit({ factoryId: acmeId, target: device.uuid, limit: 100 });
    expect(trail.map((r) => r.reason)).toContain('device_disabled');
  });

  it('are recorded under the factory whose CA signed the certificate, also when the CA is what is refused', async () => {
    const device = await enrolledDevice();
    const online = (await deps.store.listDeviceCas({ factoryId: acmeId })).find((c) => c.kind === 'online')!;
    // A second CA, so that revoking the first leaves the factory working.
    await createOnlineCa(deps, system, (await deps.store.getFactory(acmeId))!);
    await service.setCaState(operator, 'acme', online.id, 'revoked', 'compromised');
    expect(await hubCreds(device)).toEqual({ status: 403, code: 'ca_revoked' });
    expect(await refusal('token.refused', 'ca_revoked')).toMatchObject({ actor: `device:${device.uuid}`, factoryId: acmeId, target: device.uuid });
  });
});

describe('admin API refusals', () => {
  let token: { id: string; secret: string };

  beforeAll(async () => {
    const created = await service.createToken(operator, 'acme', { scopes: ['devices:read'] });
    token = { id: created.id, secret: created.secret };
  });

  const get = (path: string, secret?: string) => {
    const r = request(running.app).get(path);
    return secret === undefined ? r : r.set('Authorization', `Bearer ${secret}`);
  };

  it('are recorded under the token\'s factory: another factory, a missing scope', async () => {
    expect((await get('/v1/factories/other/devices', token.secret)).status).toBe(403);
    expect(await refusal('admin.refused', 'factory_forbidden')).toMatchObject({ actor: `token:${token.id}`, factoryId: acmeId, target: 'other', outcome: 'denied' });
    expect((await get('/v1/factories/acme/tokens', token.secret)).status).toBe(403);
    expect(await refusal('admin.refused', 'scope_missing')).toMatchObject({ actor: `token:${token.id}`, factoryId: acmeId, target: 'acme' });
  });

  it('record a 401 under the token and its factory when the token is known, and without one otherwise', async () => {
    const revoked = await service.createToken(operator, 'acme', { scopes: ['devices:read'] });
    await service.revokeToken(operator, 'acme', revoked.id);
    expect((await get('/v1/factories/acme/devices', revoked.secret)).status).toBe(401);
    expect(await refusal('admin.refused', 'token_revoked')).toMatchObject({ actor: `token:${revoked.id}`, factoryId: acmeId, target: revoked.id });

    expect((await get('/v1/factories/acme/devices', 'tga_' + 'A'.repeat(43))).status).toBe(401);
    expect(await refusal('admin.refused', 'token_invalid')).toMatchObject({ actor: 'anonymous', factoryId: null });
    const basic = await request(running.app).get('/v1/factories/acme/devices').set('Authorization', 'Basic YTpi');
    expect([basic.status, basic.body.error.code]).toEqual([401, 'token_required']);
    expect(await refusal('admin.refused', 'token_required')).toMatchObject({ actor: 'anonymous', factoryId: null });
  });

  it('are bounded by the address back-off: an address that keeps failing gets 429, which is not recorded', async () => {
    const limits = running.config.limits;
    const limiter = new RequestLimiter({ ...limits, enabled: true, failures: { ...limits.failures, threshold: 3, blockSeconds: 60 } }, { scope: 'admin' });
    const app = createAdminApp({ service, log: createLogger('admin', 'silent'), enrollment: { gatewayCa: '', gateway: 'https://gateway.test' }, limiter });
    const recorded = async () => (await deps.store.listAudit({ action: 'admin.refused', limit: 1000 })).length;
    const before = await recorded();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const answer = await request(app).get('/v1/factories/acme/devices').set('Authorization', `Bearer tga_${'C'.repeat(43)}`);
      statuses.push(answer.status);
      if (answer.status === 429) expect([answer.body.error.code, Number(answer.headers['retry-after']) > 0]).toEqual(['credentials_backoff', true]);
    }
    expect(statuses[0]).toBe(401);
    expect(statuses.at(-1)).toBe(429);
    const unauthorized = statuses.filter((s) => s === 401).length;
    expect(unauthorized).toBeLessThanOrEqual(4);
    expect((await recorded()) - before).toBe(unauthorized);
    // The address, not the token, is held back: a valid token from it waits too.
    const created = await service.createToken(operator, 'acme', { scopes: ['devices:read'] });
    expect((await request(app).get('/v1/factories/acme/devices').set('Authorization', `Bearer ${created.secret}`)).status).toBe(429);
  });
});
