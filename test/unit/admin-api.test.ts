import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApp } from '../../admin/app.js';
import { AdminService, type Principal } from '../../admin/service.js';
import { createFactory, createOnlineCa } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, derToPem, generateKeyPair, isIssuedBy, issueCertificate, parseCertificate } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import { newSecret } from '../../shared/secrets.js';
import type { SqlStore } from '../../shared/store/index.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';
import { tableSnapshot } from '../support/db-snapshot.js';
import { AnswerRecorder, nonConforming } from '../support/openapi-check.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY = 86_400_000;
const GATEWAY_CA = '-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n';
const GATEWAY = 'https://gateway.test:8443';
const operator: Principal = { kind: 'operator' };

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let app: ReturnType<typeof createAdminApp>;
/** Every answer of this suite, checked against the OpenAPI document at the end. */
const recorder = new AnswerRecorder();
/** Added to the real clock: lets a test age tokens without waiting. */
let clockOffset = 0;

const secrets: Record<'admin' | 'reader' | 'ci' | 'tester' | 'other', string> = { admin: '', reader: '', ci: '', tester: '', other: '' };

async function tokenFor(factory: string, scopes: string[], days?: number): Promise<{ id: string; secret: string }> {
  const t = await service.createToken(operator, factory, { scopes, ...(days ? { days } : {}) });
  return { id: t.id, secret: t.secret };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-api-'));
  config = loadConfig({ env: {}, cwd: dir });
  deps = openAuthority(config, () => Date.now() + clockOffset);
  service = new AdminService(deps);
  app = recorder.wrap(createAdminApp({ service, log: createLogger('admin-test', 'silent'), enrollment: { gatewayCa: GATEWAY_CA, gateway: GATEWAY } }));
  const system = { actor: 'system' };
  for (const name of ['acme', 'other']) await createOnlineCa(deps, system, await createFactory(deps, system, name));
  secrets.admin = (await tokenFor('acme', ['devices:read', 'devices:write', 'tokens:write', 'containers:read'])).secret;
  secrets.reader = (await tokenFor('acme', ['devices:read'])).secret;
  secrets.ci = (await tokenFor('acme', ['containers:read'])).secret;
  secrets.tester = (await tokenFor('acme', ['devices:test'])).secret;
  secrets.other = (await tokenFor('other', ['devices:read', 'devices:write', 'tokens:write'])).secret;
});

afterAll(() => {
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---- helpers --------------------------------------------------------------------------------

type Who = keyof typeof secrets;
const api = {
  get: (path: string, who: Who = 'admin') => request(app).get(path).set('Authorization', `Bearer ${secrets[who]}`),
  post: (path: string, body: unknown, who: Who = 'admin') => request(app).post(path).set('Authorization', `Bearer ${secrets[who]}`).send(body as object),
  delete: (path: string, who: Who = 'admin') => request(app).delete(path).set('Authorization', `Bearer ${secrets[who]}`),
};

const snapshot = () => tableSnapshot(config.databasePath);

/**
 * Sends a mutation that must be refused with `status`/`code`, and checks the database did not
 * change but for the refusal's own audit record, if it has one.
 */
async function refused(send: () => request.Test, status: number, code: string) {
  const { auditCount: auditBefore, ...before } = snapshot();
  const res = await send();
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  const { auditCount: auditAfter, ...after } = snapshot();
  expect(after).toEqual(before);
  expect(auditAfter - auditBefore).toBeLessThanOrEqual(1);
  if (auditAfter > auditBefore) {
    const [newest] = await deps.store.listAudit({ limit: 1, order: 'desc' });
    expect(newest).toMatchObject({ outcome: 'denied', reason: code });
  }
  return res;
}

interface CsrOptions {
  uuid?: string;
  ou?: string;
  keyUsage?: string[];
  extendedKeyUsage?: string[];
  pair?: { privateKeyPem: string; publicKeyPem: string };
}

async function csrFor(options: CsrOptions = {}): Promise<{ uuid: string; csr: string }> {
  const uuid = options.uuid ?? randomUUID();
  const pair = options.pair ?? generateKeyPair('ec-p256');
  const csr = await createCsr({
    subject: { commonName: uuid, organizationalUnit: options.ou ?? 'acme' },
    ...pair,
    keyUsage: options.keyUsage ?? ['digitalSignature'],
    extendedKeyUsage: options.extendedKeyUsage ?? [CLIENT_AUTH],
  });
  return { uuid, csr };
}

async function enrolled(who: Who = 'admin'): Promise<string> {
  const { uuid, csr } = await csrFor();
  const res = await api.post('/v1/factories/acme/devices', { csr }, who);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return uuid;
}

const pemToDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

// ---- tests ----------------------------------------------------------------------------------

describe('admin API authentication', () => {
  it('answers /healthz without a token', async () => {
    const res = await request(app).get('/healthz');
    expect(res.status).toBe(200);
  });

  it('refuses a missing token with 401 token_required and a Bearer challenge', async () => {
    const res = await request(app).get('/v1/whoami');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('token_required');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('refuses another scheme, a malformed token and an unknown well-formed token', async () => {
    const basic = await request(app).get('/v1/whoami').set('Authorization', 'Basic dXNlcjpwYXNz');
    expect([basic.status, basic.body.error.code]).toEqual([401, 'token_required']);
    const garbage = await request(app).get('/v1/whoami').set('Authorization', 'Bearer tga_nope');
    expect([garbage.status, garbage.body.error.code]).toEqual([401, 'token_invalid']);
    const unknown = await request(app).get('/v1/whoami').set('Authorization', `Bearer ${newSecret('api').secret}`);
    expect([unknown.status, unknown.body.error.code]).toEqual([401, 'token_invalid']);
    const device = await request(app).get('/v1/whoami').set('Authorization', `Bearer ${newSecret('device').secret}`);
    expect([device.status, device.body.error.code]).toEqual([401, 'token_invalid']);
  });

  it('refuses a revoked token', async () => {
    const t = await tokenFor('acme', ['devices:read']);
    await service.revokeToken(operator, 'acme', t.id);
    const res = await request(app).get('/v1/whoami').set('Authorization', `Bearer ${t.secret}`);
    expect([res.status, res.body.error.code]).toEqual([401, 'token_revoked']);
  });

  it('refuses an expired token', async () => {
    const t = await tokenFor('acme', ['devices:read'], 1);
    expect((await request(app).get('/v1/whoami').set('Authorization', `Bearer ${t.secret}`)).status).toBe(200);
    clockOffset = 2 * DAY;
    try {
      const res = await request(app).get('/v1/whoami').set('Authorization', `Bearer ${t.secret}`);
      expect([res.status, res.body.error.code]).toEqual([401, 'token_expired']);
    } finally {
      clockOffset = 0;
    }
  });

  it('leaves the database unchanged when an unauthenticated mutation is refused', async () => {
    const { csr } = await csrFor();
    await refused(() => request(app).post('/v1/factories/acme/devices').send({ csr }), 401, 'token_required');
    await refused(() => request(app).post('/v1/factories/acme/devices').set('Authorization', `Bearer ${newSecret('api').secret}`).send({ csr }), 401, 'token_invalid');
  });

  it('says who the token is', async () => {
    const res = await api.get('/v1/whoami', 'reader');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'token', factory: 'acme', token: { scopes: ['devices:read'] } });
    expect(JSON.stringify(res.body)).not.toContain(secrets.reader);
  });
});

describe('admin API authorization', () => {
  it('refuses a token of factory A on factory B, existing or not, with 403', async () => {
    for (const path of ['/v1/factories/other/devices', '/v1/factories/nonexistent/devices', '/v1/factories/other']) {
      const res = await api.get(path);
      expect([res.status, res.body.error.code]).toEqual([403, 'factory_forbidden']);
    }
    const { csr } = await csrFor({ ou: 'other' });
    await refused(() => api.post('/v1/factories/other/devices', { csr }), 403, 'factory_forbidden');
    await refused(() => api.post('/v1/factories/other/cas', { kind: 'online' }), 403, 'factory_forbidden');
  });

  it('refuses a token without the scope the route needs', async () => {
    const list = await api.get('/v1/factories/acme/devices', 'ci');
    expect([list.status, list.body.error.code]).toEqual([403, 'scope_missing']);
    const { csr } = await csrFor();
    await refused(() => api.post('/v1/factories/acme/devices', { csr }, 'reader'), 403, 'scope_missing');
    await refused(() => api.post('/v1/factories/acme/cas', { kind: 'online' }, 'reader'), 403, 'scope_missing');
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: ['devices:read'] }, 'reader'), 403, 'scope_missing');
  });

  it('lets a devices:test token issue a test device, and nothing else', async () => {
    const { uuid, csr } = await csrFor();
    const res = await api.post('/v1/factories/acme/devices', { csr, test: true, hours: 2 }, 'tester');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.device).toMatchObject({ uuid, test: true, factory: 'acme' });
    const lifetime = Date.parse(res.body.device.certificate.notAfter) - Date.now();
    expect(lifetime).toBeGreaterThan(1.9 * 3_600_000);
    expect(lifetime).toBeLessThanOrEqual(2 * 3_600_000);

    const normal = await csrFor();
    await refused(() => api.post('/v1/factories/acme/devices', { csr: normal.csr }, 'tester'), 403, 'scope_missing');
    await refused(() => api.post('/v1/factories/acme/devices', { csr: normal.csr, test: false }, 'tester'), 403, 'scope_missing');
    await refused(() => api.post('/v1/factories/acme/devices', { csr: normal.csr, test: true, hours: 10_000 }, 'tester'), 400, 'lifetime_exceeds_policy');
    await refused(() => api.post(`/v1/factories/acme/devices/${uuid}/revoke`, {}, 'tester'), 403, 'scope_missing');
    const list = await api.get('/v1/factories/acme/devices', 'tester');
    expect(list.status).toBe(403);
  });
});

describe('enrollment', () => {
  it('enrolls from a CSR and answers with everything the device needs', async () => {
    const { uuid, csr } = await csrFor();
    const res = await api.post('/v1/factories/acme/devices', { csr, name: 'kiosk 1' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['caCertificate', 'certificate', 'device', 'gateway', 'gatewayCa']);
    expect(res.body.device).toMatchObject({ uuid, factory: 'acme', name: 'kiosk 1', state: 'active', test: false });
    expect(res.body.gateway).toBe(GATEWAY);
    expect(res.body.gatewayCa).toBe(GATEWAY_CA);
    const cert = parseCertificate(res.body.certificate);
    expect(cert.subject).toMatchObject({ commonName: uuid, organizationalUnit: 'acme' });
    expect(cert.extendedKeyUsage).toContain(CLIENT_AUTH);
    expect(isIssuedBy(cert, parseCertificate(res.body.caCertificate))).toBe(true);
  });

  it('refuses a CSR whose signature does not verify', async () => {
    const { csr } = await csrFor();
    const der = pemToDer(csr);
    der[der.length - 1]! ^= 0x01;
    await refused(() => api.post('/v1/factories/acme/devices', { csr: derToPem(der, 'CERTIFICATE REQUEST') }), 400, 'csr_signature_invalid');
  });

  it('refuses a CSR for another factory (OU)', async () => {
    const { csr } = await csrFor({ ou: 'other' });
    await refused(() => api.post('/v1/factories/acme/devices', { csr }), 400, 'factory_mismatch');
  });

  it('refuses a second device with an enrolled UUID', async () => {
    const uuid = await enrolled();
    const { csr } = await csrFor({ uuid });
    await refused(() => api.post('/v1/factories/acme/devices', { csr }), 409, 'device_exists');
  });

  it('refuses a CSR asking for CA key usage or a non-client purpose', async () => {
    const ca = await csrFor({ keyUsage: ['keyCertSign'] });
    await refused(() => api.post('/v1/factories/acme/devices', { csr: ca.csr }), 400, 'csr_key_usage_invalid');
    const server = await csrFor({ extendedKeyUsage: [SERVER_AUTH] });
    await refused(() => api.post('/v1/factories/acme/devices', { csr: server.csr }), 400, 'csr_key_usage_invalid');
  });

  it('refuses an RSA-1024 key', async () => {
    const weak = crypto.generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const { csr } = await csrFor({ pair: { privateKeyPem: weak.privateKey, publicKeyPem: weak.publicKey } });
    await refused(() => api.post('/v1/factories/acme/devices', { csr }), 400, 'key_too_small');
  });

  it('refuses an ambiguous or empty enrollment, and lifetimes that do not apply', async () => {
    const { csr } = await csrFor();
    await refused(() => api.post('/v1/factories/acme/devices', {}), 400, 'enrollment_source');
    await refused(() => api.post('/v1/factories/acme/devices', { csr, certificate: 'x' }), 400, 'enrollment_source');
    await refused(() => api.post('/v1/factories/acme/devices', { csr, days: 100_000 }), 400, 'lifetime_exceeds_policy');
    await refused(() => api.post('/v1/factories/acme/devices', { csr, days: 1.5 }), 400, 'days_invalid');
    await refused(() => api.post('/v1/factories/acme/devices', { csr, test: 'yes' }), 400, 'test_invalid');
    await refused(() => api.post('/v1/factories/acme/devices', { csr: 'not a csr' }), 400, 'pem_invalid');
  });

  it('enrolls from a certificate issued by a registered external CA, and refuses one from an unknown CA', async () => {
    const makeCa = async (cn: string) => {
      const pair = generateKeyPair('ec-p256');
      const pem = await issueCertificate({
        profile: 'device-ca',
        subject: { commonName: cn, organizationalUnit: 'acme' },
        publicKey: crypto.createPublicKey(pair.publicKeyPem),
        notAfter: new Date(Date.now() + 365 * DAY),
        selfSignPrivateKeyPem: pair.privateKeyPem,
      });
      return { pem, key: pair.privateKeyPem };
    };
    const deviceCert = async (issuer: { pem: string; key: string }, uuid: string) =>
      issueCertificate({
        profile: 'device-client',
        subject: { commonName: uuid, organizationalUnit: 'acme' },
        publicKey: crypto.createPublicKey(generateKeyPair('ec-p256').publicKeyPem),
        notAfter: new Date(Date.now() + 30 * DAY),
        issuer: { certificatePem: issuer.pem, privateKeyPem: issuer.key },
      });

    // Proof of possession: the CA key signs a certificate naming a fresh registration code.
    const verificationFor = async (issuer: { pem: string; key: string }) => {
      const code = await api.post('/v1/factories/acme/cas/registration-code', undefined);
      expect(code.status, JSON.stringify(code.body)).toBe(201);
      return issueCertificate({
        profile: 'ca-verification',
        subject: { commonName: code.body.code },
        publicKey: crypto.createPublicKey(generateKeyPair('ec-p256').publicKeyPem),
        notAfter: new Date(Date.now() + DAY),
        issuer: { certificatePem: issuer.pem, privateKeyPem: issuer.key },
      });
    };

    const external = await makeCa('ACME line 3 CA');
    const added = await api.post('/v1/factories/acme/cas', { kind: 'external', certificate: external.pem, verificationCertificate: await verificationFor(external) });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body).toMatchObject({ kind: 'external', state: 'active', commonName: 'ACME line 3 CA' });

    const uuid = randomUUID();
    const res = await api.post('/v1/factories/acme/devices', { certificate: await deviceCert(external, uuid), name: 'line 3' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.device).toMatchObject({ uuid, caId: added.body.id });

    const stranger = await makeCa('Not registered');
    await refused(() => api.post('/v1/factories/acme/devices', { certificate: 'garbage' }), 400, 'pem_invalid');
    const foreign = await deviceCert(stranger, randomUUID());
    await refused(() => api.post('/v1/factories/acme/devices', { certificate: foreign }), 400, 'certificate_untrusted');
    await refused(() => api.post('/v1/factories/acme/cas', { kind: 'external', certificate: external.pem }), 409, 'ca_exists');
  });
});

describe('device management', () => {
  it('lists, shows, disables, enables, revokes and deletes', async () => {
    const uuid = await enrolled();
    const list = await api.get('/v1/factories/acme/devices?state=active&limit=1000');
    expect(list.status).toBe(200);
    expect(list.body.items.map((d: { uuid: string }) => d.uuid)).toContain(uuid);
    expect(list.body.next).toBeNull();

    const show = await api.get(`/v1/factories/acme/devices/${uuid}`, 'reader');
    expect(show.status).toBe(200);
    expect(show.body).toMatchObject({ uuid, state: 'active' });
    expect(show.body.history.map((h: { action: string }) => h.action)).toContain('device.enrolled');

    const disabled = await api.post(`/v1/factories/acme/devices/${uuid}/disable`, { reason: 'maintenance' });
    expect([disabled.status, disabled.body.state, disabled.body.stateReason]).toEqual([200, 'disabled', 'maintenance']);
    const disabledList = await api.get('/v1/factories/acme/devices?state=disabled');
    expect(disabledList.body.items.map((d: { uuid: string }) => d.uuid)).toEqual([uuid]);
    const enabled = await request(app).post(`/v1/factories/acme/devices/${uuid}/enable`).set('Authorization', `Bearer ${secrets.admin}`);
    expect([enabled.status, enabled.body.state]).toEqual([200, 'active']);
    const revoked = await api.post(`/v1/factories/acme/devices/${uuid}/revoke`, { reason: 'stolen' });
    expect([revoked.status, revoked.body.state]).toEqual([200, 'revoked']);
    await refused(() => api.post(`/v1/factories/acme/devices/${uuid}/enable`, {}), 409, 'device_state_transition');

    const history = await api.get(`/v1/factories/acme/audit?target=${uuid}`);
    expect(history.body.items.map((h: { action: string }) => h.action)).toEqual(['device.enrolled', 'device.disabled', 'device.enabled', 'device.revoked']);

    const deleted = await api.delete(`/v1/factories/acme/devices/${uuid}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const gone = await api.get(`/v1/factories/acme/devices/${uuid}`);
    expect([gone.status, gone.body.error.code]).toEqual([404, 'device_not_found']);
    await refused(() => api.delete(`/v1/factories/acme/devices/${uuid}`), 404, 'device_not_found');
  });

  it('hides the devices of another factory as not found', async () => {
    const uuid = await enrolled();
    const res = await api.get(`/v1/factories/other/devices/${uuid}`, 'other');
    expect([res.status, res.body.error.code]).toEqual([404, 'device_not_found']);
    await refused(() => api.post(`/v1/factories/other/devices/${uuid}/revoke`, {}, 'other'), 404, 'device_not_found');
    await refused(() => api.delete(`/v1/factories/other/devices/${uuid}`, 'other'), 404, 'device_not_found');
  });

  it('manages CAs: create, show, disable, and refuses unknown kinds and foreign ids', async () => {
    const created = await api.post('/v1/factories/acme/cas', { kind: 'online', commonName: 'ACME second CA', days: 365 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ kind: 'online', commonName: 'ACME second CA', state: 'active' });
    const shown = await api.get(`/v1/factories/acme/cas/${created.body.id}`);
    expect(shown.body.id).toBe(created.body.id);
    expect((await api.get('/v1/factories/acme/cas')).body.items.map((c: { id: string }) => c.id)).toContain(created.body.id);
    const disabled = await api.post(`/v1/factories/acme/cas/${created.body.id}/disable`, { reason: 'rotation' });
    expect([disabled.status, disabled.body.state]).toEqual([200, 'disabled']);

    await refused(() => api.post('/v1/factories/acme/cas', { kind: 'bogus' }), 400, 'kind_invalid');
    await refused(() => api.post('/v1/factories/acme/cas', { kind: 'online', days: 0 }), 400, 'days_invalid');
    await refused(() => api.post('/v1/factories/acme/cas', { kind: 'online', certificate: 'x' }), 400, 'body_unknown_key');
    const otherCa = (await api.get('/v1/factories/other/cas', 'other')).body.items[0].id as string;
    const foreign = await api.get(`/v1/factories/acme/cas/${otherCa}`);
    expect([foreign.status, foreign.body.error.code]).toEqual([404, 'ca_not_found']);
    await refused(() => api.post(`/v1/factories/acme/cas/${otherCa}/revoke`, {}), 404, 'ca_not_found');
  });

  it('pages through devices and the audit trail with opaque cursors, and filters them', async () => {
    const order = [await enrolled(), await enrolled(), await enrolled()];
    const mine = [...order].sort();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await api.get(`/v1/factories/acme/devices?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((d: { uuid: string }) => d.uuid));
      cursor = page.body.next;
      if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (const uuid of mine) expect(seen).toContain(uuid);

    const byPrefix = await api.get(`/v1/factories/acme/devices?search=${mine[0]!.slice(0, 13)}`);
    expect(byPrefix.body.items.map((d: { uuid: string }) => d.uuid)).toEqual([mine[0]]);
    expect((await api.get('/v1/factories/acme/devices?search=%25')).body.items).toEqual([]);
    const tests = await api.get('/v1/factories/acme/devices?test=true&limit=1000');
    expect(tests.body.items.every((d: { test: boolean }) => d.test)).toBe(true);

    const newest = await api.get(`/v1/factories/acme/audit?order=desc&limit=2&action=device.enrolled`);
    const older = await api.get(`/v1/factories/acme/audit?order=desc&limit=2&action=device.enrolled&cursor=${newest.body.next}`);
    const ids = [...newest.body.items, ...older.body.items].map((r: { id: number }) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(newest.body.items.map((r: { target: string }) => r.target)).toEqual([order[2], order[1]]);
    expect(older.body.items[0].target).toBe(order[0]);
    // An ascending cursor is not a descending list's.
    expect((await api.get(`/v1/factories/acme/audit?cursor=${newest.body.next}`)).body.error.code).toBe('cursor_invalid');
    // Later than every record, those written on the test's advanced clock (clockOffset) too.
    const future = await api.get(`/v1/factories/acme/audit?from=${encodeURIComponent(new Date(Date.now() + 7 * DAY).toISOString())}`);
    expect(future.body).toEqual({ items: [], next: null });
    const denied = await api.get('/v1/factories/acme/audit?outcome=denied&limit=1000');
    expect(denied.body.items.every((r: { outcome: string }) => r.outcome === 'denied')).toBe(true);
  });

  it('validates list and audit queries', async () => {
    const bad = [
      ['/v1/factories/acme/devices?limit=abc', 'limit_invalid'],
      ['/v1/factories/acme/devices?limit=0', 'limit_invalid'],
      ['/v1/factories/acme/devices?state=gone', 'state_invalid'],
      ['/v1/factories/acme/devices?state=a&state=b', 'state_invalid'],
      ['/v1/factories/acme/devices?bogus=1', 'query_unknown_key'],
      ['/v1/factories/acme/audit?after=x', 'query_unknown_key'],
      ['/v1/factories/acme/audit?cursor=x', 'cursor_invalid'],
      ['/v1/factories/acme/devices?cursor=WyJhdWRpdC1hc2MiLDFd', 'cursor_invalid'],
      ['/v1/factories/acme/audit?from=yesterday', 'from_invalid'],
      ['/v1/factories/acme/audit?outcome=maybe', 'outcome_invalid'],
      ['/v1/factories/acme/devices?test=yes', 'test_invalid'],
      ['/v1/factories/acme/audit?limit=5000', 'limit_invalid'],
    ] as const;
    for (const [path, code] of bad) {
      const res = await api.get(path);
      expect([path, res.status, res.body.error?.code]).toEqual([path, 400, code]);
    }
  });
});

describe('API tokens', () => {
  it('creates, lists without secrets, and revokes', async () => {
    const created = await api.post('/v1/factories/acme/tokens', { scopes: ['containers:read'], description: 'CI pull', days: 30 });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^tga_/);
    expect(created.body).toMatchObject({ username: created.body.id, scopes: ['containers:read'], description: 'CI pull' });

    const list = await api.get('/v1/factories/acme/tokens');
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: { id: string }) => t.id)).toContain(created.body.id);
    expect(JSON.stringify(list.body)).not.toMatch(/tg[adr]_[A-Za-z0-9_-]{49}/);
    for (const t of list.body.items as Record<string, unknown>[]) expect(Object.keys(t)).not.toContain('secret');

    const revoked = await api.delete(`/v1/factories/acme/tokens/${created.body.id}`);
    expect(revoked.status).toBe(204);
    const after = (await api.get('/v1/factories/acme/tokens')).body.items.find((t: { id: string }) => t.id === created.body.id);
    expect(after.revokedAt).not.toBeNull();
    await refused(() => api.delete(`/v1/factories/acme/tokens/${created.body.id}`), 404, 'token_not_found');
  });

  it('never lets a token grant scopes it lacks, nor the catalog', async () => {
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: ['containers:write'] }), 403, 'scope_not_grantable');
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: ['catalog:read'] }), 403, 'scope_not_grantable');
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: ['root'] }), 400, 'scope_unknown');
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: [] }), 400, 'scopes_invalid');
    await refused(() => api.post('/v1/factories/acme/tokens', { scopes: 'devices:read' }), 400, 'scopes_invalid');
  });

  it('refuses revoking another factory\'s token as not found', async () => {
    const t = await tokenFor('other', ['devices:read']);
    await refused(() => api.delete(`/v1/factories/acme/tokens/${t.id}`), 404, 'token_not_found');
    await refused(() => api.delete('/v1/factories/acme/tokens/not-a-token'), 400, 'token_id_invalid');
  });
});

describe('hostile and malformed requests', () => {
  const devices = '/v1/factories/acme/devices';
  const authed = () => request(app).post(devices).set('Authorization', `Bearer ${secrets.admin}`);

  it('refuses malformed JSON with 400 body_invalid_json', async () => {
    await refused(() => authed().set('Content-Type', 'application/json').send('{"csr": '), 400, 'body_invalid_json');
    await refused(() => authed().set('Content-Type', 'application/json').send('null'), 400, 'body_invalid_json');
  });

  it('refuses a JSON body that is not an object', async () => {
    await refused(() => authed().set('Content-Type', 'application/json').send('["csr"]'), 400, 'body_invalid');
  });

  it('refuses a body over 64 KiB with 413 body_too_large', async () => {
    const { csr } = await csrFor();
    await refused(() => api.post(devices, { csr, name: 'x'.repeat(70 * 1024) }), 413, 'body_too_large');
  });

  it('refuses a non-JSON content type with 415 content_type_unsupported', async () => {
    await refused(() => authed().set('Content-Type', 'text/plain').send('csr=x'), 415, 'content_type_unsupported');
    await refused(() => authed().type('form').send({ csr: 'x' }), 415, 'content_type_unsupported');
  });

  it('names an unknown body key', async () => {
    const { csr } = await csrFor();
    const res = await refused(() => api.post(devices, { csr, dayz: 3 }), 400, 'body_unknown_key');
    expect(res.body.error.message).toContain('"dayz"');
    expect(res.body.error.details).toEqual({ keys: ['dayz'] });
    const wrongType = await refused(() => api.post(devices, { csr, name: 42 }), 400, 'name_invalid');
    expect(wrongType.body.error.details).toEqual({ key: 'name' });
  });

  it('refuses NUL and oversized labels precisely', async () => {
    const { csr } = await csrFor();
    await refused(() => api.post(devices, { csr, name: 'kiosk\u0000evil' }), 400, 'name_invalid');
    await refused(() => api.post(devices, { csr, name: 'n'.repeat(10_000) }), 400, 'name_invalid');
    const uuid = await enrolled();
    await refused(() => api.post(`${devices}/${uuid}/disable`, { reason: 'r'.repeat(10_000) }), 400, 'reason_invalid');
    await refused(() => api.post(`${devices}/${uuid}/disable`, { reason: 'line\nbreak' }), 400, 'reason_invalid');
  });

  it('refuses path traversal, NUL and garbage in path parameters', async () => {
    const cases: [string, number, string][] = [
      [`${devices}/..%2f..`, 400, 'device_uuid_invalid'],
      [`${devices}/..%2F..%2Ffactories`, 400, 'device_uuid_invalid'],
      [`${devices}/%00`, 400, 'device_uuid_invalid'],
      [`${devices}/${'a'.repeat(10_000)}`, 400, 'device_uuid_invalid'],
      [`${devices}/%zz`, 400, 'path_invalid'],
      [`/v1/factories/${'f'.repeat(10_000)}/devices`, 403, 'factory_forbidden'],
      ['/v1/factories/acme%00/devices', 403, 'factory_forbidden'],
    ];
    for (const [path, status, code] of cases) {
      const res = await api.get(path);
      expect([path.slice(0, 60), res.status, res.body.error?.code]).toEqual([path.slice(0, 60), status, code]);
    }
    await refused(() => api.delete(`${devices}/..%2f..`), 400, 'device_uuid_invalid');
    await refused(() => api.post(`${devices}/..%2f..%2f/revoke`, {}), 400, 'device_uuid_invalid');
    await refused(() => api.post(`${devices}/${randomUUID()}/explode`, {}), 404, 'route_not_found');
  });

  it('answers unknown routes with 404 route_not_found', async () => {
    const res = await api.get('/v1/nothing');
    expect([res.status, res.body.error.code]).toEqual([404, 'route_not_found']);
  });
});

describe('factory settings and CA registration codes', () => {
  const patch = (path: string, body: unknown, who: Who) => request(app).patch(path).set('Authorization', `Bearer ${secrets[who]}`).send(body as object);

  it('shows the defaults, changes them with devices:write, and refuses bad values and other scopes', async () => {
    const shown = await api.get('/v1/factories/other/settings', 'other');
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ factory: 'other', jitMode: 'off', certMaxDays: config.pki.deviceCertDays, testCertMaxHours: config.pki.testCertMaxHours });

    const changed = await patch('/v1/factories/other/settings', { jit: 'pending', certMaxDays: 90, keyTypes: ['ec-p256', 'ec-p384'] }, 'other');
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toMatchObject({ jitMode: 'pending', certMaxDays: 90, keyTypes: ['ec-p256', 'ec-p384'] });
    // null restores the configured default.
    const reset = await patch('/v1/factories/other/settings', { certMaxDays: null }, 'other');
    expect(reset.body.certMaxDays).toBe(config.pki.deviceCertDays);

    await refused(() => patch('/v1/factories/other/settings', { jit: 'maybe' }, 'other'), 400, 'jit_invalid');
    await refused(() => patch('/v1/factories/other/settings', { certMaxDays: 0 }, 'other'), 400, 'cert_max_days_invalid');
    await refused(() => patch('/v1/factories/other/settings', { keyTypes: ['rsa-1024'] }, 'other'), 400, 'key_types_invalid');
    await refused(() => patch('/v1/factories/other/settings', { jitMode: 'off' }, 'other'), 400, 'body_unknown_key');
    await refused(() => patch('/v1/factories/acme/settings', { jit: 'active' }, 'reader'), 403, 'scope_missing');
    await refused(() => patch('/v1/factories/other/settings', { jit: 'active' }, 'admin'), 403, 'factory_forbidden');
    expect((await api.get('/v1/factories/acme/settings', 'reader')).status).toBe(200);
  });

  it('hands out single-use registration codes to devices:write only', async () => {
    const res = await api.post('/v1/factories/other/cas/registration-code', undefined, 'other');
    expect(res.status).toBe(201);
    expect(res.body.code).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now() + 59 * 60_000);
    await refused(() => api.post('/v1/factories/acme/cas/registration-code', undefined, 'reader'), 403, 'scope_missing');
  });
});

describe('the OpenAPI document', () => {
  it('is served without credentials and describes every answer this suite received', async () => {
    const served = await request(app).get('/v1/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body.openapi).toBe('3.1.0');
    expect(Object.keys(served.body.paths)).toContain('/v1/factories/{factory}/devices/bulk');
    // Requests for paths that are no operation get the generic 404 (or 400 for an undecodable
    // path): no operation describes those; every other answer must match its operation.
    const outside = (a: { body: string }) => /"code":"(route_not_found|path_invalid)"/.test(a.body);
    expect(recorder.answers.filter(outside).length).toBeGreaterThan(0);
    const answers = recorder.answers.filter((a) => a.url !== '/v1/openapi.json' && !outside(a));
    expect(answers.length).toBeGreaterThan(100);
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200, 201, 204, 400, 401, 403, 404, 409, 413, 415]));
    expect(await nonConforming(served.body, answers)).toEqual([]);
  });

  it('reports an answer the document does not describe', async () => {
    const served = await request(app).get('/v1/openapi.json');
    const forged = { method: 'GET', url: '/v1/whoami', status: 200, contentType: 'application/json', body: JSON.stringify({ kind: 'superuser' }) };
    const undocumented = { method: 'GET', url: '/v1/nowhere', status: 200, contentType: 'application/json', body: '{}' };
    const complaints = await nonConforming(served.body, [forged, undocumented]);
    expect(complaints).toHaveLength(2);
  });
});
