import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../admin/app.js';
import { AdminService, type Principal } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair, issueCertificate } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqliteStore } from '../../shared/store/index.js';
import { deviceGet } from '../support/device-client.js';

/**
 * Device identity is global: a UUID names one device in the whole deployment (it is the token
 * username, the JWT subject, the certificate CN the gateway looks up). What another factory can
 * learn about a UUID it does not hold is only that it cannot have it: not where it is, not whether
 * it is enrolled now or was before.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqliteStore };
let app: ReturnType<typeof createAdminApp>;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;
const admins: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-identity-'));
  config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0' }, cwd: dir });
  deps = openAuthority(config);
  const service = new AdminService(deps);
  app = createAdminApp({ service, log: createLogger('admin', 'silent'), enrollment: { gatewayCa: '', gateway: 'https://gateway.test' } });
  material = await developmentGatewayTls(config);
  for (const name of ['alpha', 'beta']) {
    await createOnlineCa(deps, system, await createFactory(deps, system, name));
    admins[name] = (await service.createToken(operator, name, { scopes: ['devices:read', 'devices:write'] })).secret;
  }
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log: createLogger('gateway', 'silent') });
});

afterAll(async () => {
  await gateway?.close();
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function enroll(factory: string, uuid: string) {
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const res = await request(app).post(`/v1/factories/${factory}/devices`).set('Authorization', `Bearer ${admins[factory]}`).send({ csr });
  return { status: res.status, code: res.body.error?.code as string | undefined, message: (res.body.error?.message as string | undefined)?.replaceAll(uuid, '<uuid>') };
}

const hubCreds = (creds: { key: string; cert: string }) => deviceGet({ port: gateway.port, caPem: material.caPem }, '/hub-creds/', creds);

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
    const issuer = { certificatePem: ca.certificatePem, privateKeyPem: deps.keys.get(ca.keyRef!) };
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
