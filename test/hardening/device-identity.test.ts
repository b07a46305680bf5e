import crypto, { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../admin/service.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { createCsr, generateKeyPair, issueCertificate, OID } from '../../shared/pki/index.js';
import { deviceGet } from '../support/device-client.js';
import { startGatewayAuthority, type GatewayAuthority } from '../support/gateway-authority.js';

/**
 * Device identity is global: a UUID names one device in the whole deployment (it is the token
 * username, the JWT subject, the certificate CN the gateway looks up). What another factory can
 * learn about a UUID it does not hold is only that it cannot have it: not where it is, not whether
 * it is enrolled now or was before.
 */

const CLIENT_AUTH = OID.clientAuth;
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let running: GatewayAuthority;
let deps: GatewayAuthority['deps'];
const admins: Record<string, string> = {};

beforeAll(async () => {
  running = await startGatewayAuthority('identity');
  deps = running.deps;
  const service = running.service;
  for (const name of ['alpha', 'beta']) {
    await createOnlineCa(deps, system, await createFactory(deps, system, name));
    admins[name] = (await service.createToken(operator, name, { scopes: ['devices:read', 'devices:write'] })).secret;
  }
});

afterAll(async () => {
  await running?.close();
});

async function enroll(factory: string, uuid: string) {
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const res = await request(running.app).post(`/v1/factories/${factory}/devices`).set('Authorization', `Bearer ${admins[factory]}`).send({ csr });
  return { status: res.status, code: res.body.error?.code as string | undefined, message: (res.body.error?.message as string | undefined)?.replaceAll(uuid, '<uuid>') };
}

const hubCreds = (creds: { key: string; cert: string }) => deviceGet({ port: running.gateway.port, caPem: running.material.caPem }, '/hub-creds/', creds);

describe('a device UUID another factory holds', () => {
  it('is refused at enrollment exactly as one of the factory\'s own, naming no factory', async () => {
    const alphas = randomUUID();
    const betas = randomUUID();
    expect((await enroll('alpha', alphas)).status).toBe(201);
    expect((await enroll('beta', betas)).status).toBe(201);
    const foreign = await enroll('beta', alphas);
    const own = await enroll('beta', betas);
    expect(foreign.status).toBe(409);
    expect(foreign).toEqual(own);
    expect(foreign.message).not.toMatch(/alpha/);
  });

  it('is unknown at the gateway to a certificate of another factory naming it, as any unknown UUID is', async () => {
    const alphas = randomUUID();
    expect((await enroll('alpha', alphas)).status).toBe(201);
    const beta = await deps.store.getFactoryByName('beta');
    const ca = (await deps.store.listDeviceCas({ factoryId: beta!.id }))[0]!;
    const issuer = { certificatePem: ca.certificatePem, privateKeyPem: await deps.keys.get(ca.keyRef!) };
    const cert = async (uuid: string) => {
      const pair = generateKeyPair('ec-p256');
      return { key: pair.privateKeyPem, cert: await issueCertificate({ profile: 'device-client', subject: { commonName: uuid, organizationalUnit: 'beta' }, publicKey: crypto.createPublicKey(pair.publicKeyPem), notAfter: new Date(Date.now() + 86_400_000), issuer }) };
    };
    const unknown = await hubCreds(await cert(randomUUID()));
    const taken = await hubCreds(await cert(alphas));
    expect(unknown).toEqual({ status: 403, code: 'device_unknown' });
    expect(taken).toEqual(unknown);
  });
});
