import crypto, { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { startAuthsvc } from '../../authsvc/server.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, createSigningKey, NEXT_KEY_LOCK_MS, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { isTollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';
import {
  estCsrBody,
  fioconfigEst,
  fioconfigRequest,
  fioconfigVerifyNewCert,
  libcurlGet,
  lmpPing,
  lmpRegister,
  lockBody,
  newSec1Key,
  ptreeJson,
  request,
  rotationEvent,
  ROTATION_STEPS,
  type Endpoint,
  type Identity,
} from '../support/foundries.js';

/**
 * The gateway as Foundries' device software meets it, over real TLS: fioconfig's certificate
 * rotation (lock, EST, config, events) in the order fioconfig runs it, the rotation lock in the
 * order it protects, GET /device during a rotation, and lmp-device-register's self-registration.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };
const log = createLogger('foundries-test', 'silent');

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
/** estResponse: foundries; serves registration. */
let gateway: RunningGateway;
/** estResponse: rfc7030 (the default), same store. */
let rfcGateway: RunningGateway;
let clock = 0;

const at = (g: RunningGateway, path = ''): Endpoint => ({ url: `https://127.0.0.1:${g.port}${path}`, ca: material.caPem, servername: 'localhost' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-foundries-'));
  config = loadConfig({
    env: {
      TOLLGATE_GATEWAY_LISTEN_PORT: '0',
      TOLLGATE_GATEWAY_PUBLIC_URL: 'https://gw.example.com:8443',
      TOLLGATE_GATEWAY_EST_RESPONSE: 'foundries',
      TOLLGATE_GATEWAY_REGISTRIES: 'hub.example.com,127.0.0.1:5000',
    },
    cwd: dir,
  });
  const opened = openAuthority(config);
  // A clock the lock's expiry can be tested with; it follows real time unless moved.
  deps = { ...opened, now: () => Date.now() + clock };
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
  for (const name of ['acme', 'other']) await createOnlineCa(deps, system, await createFactory(deps, system, name));
  const identity = { certPem: material.certPem, keyPem: material.keyPem, caPem: material.caPem };
  gateway = await startGateway({ config, deps, identity, log });
  rfcGateway = await startGateway({ config: { ...config, gateway: { ...config.gateway, estResponse: 'rfc7030' } }, deps, identity, log });
});

afterAll(async () => {
  await gateway?.close();
  await rfcGateway?.close();
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function enroll(factory = 'acme'): Promise<Identity & { uuid: string }> {
  const uuid = randomUUID();
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const enrolled = await service.enroll(operator, factory, { csr });
  return { uuid, cert: enrolled.certificate, key: pair.privateKeyPem };
}

const fingerprint = (pem: string) => new crypto.X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();
const keyFingerprint = (publicKeyPem: string) => crypto.createHash('sha256').update(crypto.createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })).digest('hex');
const json = (a: { text: string }) => JSON.parse(a.text) as Record<string, unknown>;
const history = async (uuid: string) => (await deps.store.listAudit({ target: uuid, limit: 1000 })).map((r) => r.action);

describe("fioconfig's certificate rotation", () => {
  it('completes in fioconfig order: EST (201, exactly application/pkcs7-mime), lock, config, finalize, events; the new identity then works', async () => {
    const device = await enroll();
    const gw = at(gateway);
    const correlationId = `certs-${Math.floor(Date.now() / 1000)}`;
    const post = async (type: string) => {
      const a = await fioconfigRequest(gw, device, 'POST', '/events', rotationEvent(type, correlationId));
      // DgEventSync only logs failures; Tollgate must still take them, in 200..204.
      expect(a.status).toBeGreaterThanOrEqual(200);
      expect(a.status).toBeLessThanOrEqual(204);
    };
    await post('CertRotationStarted');

    // estStep: a new SEC1 key, the CSR with the current certificate's raw subject.
    const next = newSec1Key();
    const est = await fioconfigEst(at(gateway, '/.well-known/est'), device, await estCsrBody(device.cert, next.key), 'mp-96');
    expect(est.error).toBeUndefined();
    expect(est.answer.status).toBe(201);
    expect(est.answer.headers['content-type']).toBe('application/pkcs7-mime');
    const newCert = est.certificatePem as string;
    expect(fioconfigVerifyNewCert(device.cert, newCert)).toBeNull();
    expect(new crypto.X509Certificate(newCert).checkPrivateKey(crypto.createPrivateKey(next.key))).toBe(true);
    await post(ROTATION_STEPS[0]);

    // lockStep, after EST as fioconfig runs it: the key already is the newest certificate's.
    const lock = await fioconfigRequest(gw, device, 'PATCH', '/device', lockBody(next.publicKeyPem));
    expect(lock.status).toBe(200);
    expect(json(lock).nextKey).toEqual({ fingerprint256: keyFingerprint(next.publicKeyPem), state: 'certified', announcedAt: null, expiresAt: null });
    await post(ROTATION_STEPS[1]);
    await post(ROTATION_STEPS[2]);

    // deviceCfgStep: 204 is "the device has no configuration", which fioconfig takes as done.
    const deviceConfig = await fioconfigRequest(gw, device, 'GET', '/config-device');
    expect(deviceConfig.status).toBe(204);
    expect(deviceConfig.body.length).toBe(0);
    await post(ROTATION_STEPS[3]);

    // Until finalize switches files, the device still presents the old certificate: GET /device says so.
    const during = json(await fioconfigRequest(gw, device, 'GET', '/device'));
    expect(during.certificate).toEqual({ fingerprint256: fingerprint(device.cert), notAfter: new Date(new crypto.X509Certificate(device.cert).validTo).toISOString() });
    expect(during.renewal).toEqual({ pending: true, certificate: { fingerprint256: fingerprint(newCert), notAfter: new Date(new crypto.X509Certificate(newCert).validTo).toISOString() } });
    await post(ROTATION_STEPS[4]);
    await post('CertRotationCompleted');

    // After finalize the daemon uses the new pair; the old certificate is then superseded.
    const renewed = { cert: newCert, key: next.key };
    const after = json(await fioconfigRequest(gw, renewed, 'GET', '/device'));
    expect(after.certificate).toMatchObject({ fingerprint256: fingerprint(newCert) });
    expect(after.renewal).toEqual({ pending: false });
    expect((await fioconfigRequest(gw, renewed, 'GET', '/hub-creds/')).status).toBe(200);
    const old = await fioconfigRequest(gw, device, 'GET', '/device');
    expect(old.status).toBe(403);
    expect((json(old).error as { code: string }).code).toBe('certificate_superseded');

    // Every report is in the device's history, in order, with the rotation's correlation id.
    const events = (await deps.store.listAudit({ target: device.uuid, action: 'device.event', limit: 100 })).map((r) => r.details);
    expect(events.map((d) => d?.type)).toEqual(['CertRotationStarted', ...ROTATION_STEPS, 'CertRotationCompleted']);
    expect(events.every((d) => d?.correlationId === correlationId && d?.success === true)).toBe(true);
    expect(await history(device.uuid)).toEqual(expect.arrayContaining(['device.renewed', 'device.next_key_announced', 'device.certificate_superseded']));
  });

  it('answers the RFC 7030 form by default: 200, no charset; fioconfig mp-97 takes it, mp-96 does not', async () => {
    const device = await enroll();
    const newer = await fioconfigEst(at(rfcGateway, '/.well-known/est'), device, await estCsrBody(device.cert, newSec1Key().key), 'mp-97');
    expect(newer.error).toBeUndefined();
    expect(newer.answer.status).toBe(200);
    expect(newer.answer.headers['content-type']).toBe('application/pkcs7-mime; smime-type=certs-only');
    const older = await fioconfigEst(at(rfcGateway, '/.well-known/est'), device, await estCsrBody(device.cert, newSec1Key().key), 'mp-96');
    expect(older.error).toBe('Unable to obtain new certificate: HTTP_200 - ' + older.answer.text);
    // The Foundries form satisfies both versions.
    const both = await fioconfigEst(at(gateway, '/.well-known/est'), device, await estCsrBody(device.cert, newSec1Key().key), 'mp-97');
    expect(both.error).toBeUndefined();
  });

  it('with the lock first, re-enrollment certifies the announced key and no other', async () => {
    const device = await enroll();
    const gw = at(gateway);
    const announced = newSec1Key();
    const lock = await fioconfigRequest(gw, device, 'PATCH', '/device', lockBody(announced.publicKeyPem));
    expect(lock.status).toBe(200);
    expect(json(lock).nextKey).toMatchObject({ fingerprint256: keyFingerprint(announced.publicKeyPem), state: 'pending' });
    expect(json(await fioconfigRequest(gw, device, 'GET', '/device')).nextKey).toMatchObject({ state: 'pending' });

    // Whoever else holds the current key cannot certify a key of their own meanwhile...
    const thief = await fioconfigEst(at(gateway, '/.well-known/est'), device, await estCsrBody(device.cert, newSec1Key().key), 'mp-96');
    expect(thief.answer.status).toBe(403);
    expect(JSON.parse(thief.answer.text).error.code).toBe('next_key_mismatch');
    // ...nor replace the announcement; announcing the same key again is harmless.
    const other = await fioconfigRequest(gw, device, 'PATCH', '/device', lockBody(newSec1Key().publicKeyPem));
    expect(other.status).toBe(409);
    expect((json(other).error as { code: string }).code).toBe('next_key_locked');
    expect((await fioconfigRequest(gw, device, 'PATCH', '/device', lockBody(announced.publicKeyPem))).status).toBe(200);

    const est = await fioconfigEst(at(gateway, '/.well-known/est'), device, await estCsrBody(device.cert, announced.key), 'mp-96');
    expect(est.error).toBeUndefined();
    // The rotation used the announcement up.
    expect(json(await fioconfigRequest(gw, device, 'GET', '/device')).nextKey).toBeNull();
    expect(await history(device.uuid)).toEqual(expect.arrayContaining(['device.next_key_refused', 'device.renew_refused']));
  });

  it('lets a lock lapse after a day, so a device that lost its rotation can start again', async () => {
    const device = await enroll();
    const gw = at(gateway);
    expect((await fioconfigRequest(gw, device, 'PATCH', '/device', lockBody(newSec1Key().publicKeyPem))).status).toBe(200);
    clock = NEXT_KEY_LOCK_MS + 1000;
    try {
      expect(json(await fioconfigRequest(gw, device, 'GET', '/device')).nextKey).toBeNull();
      const est = await fioconfigEst(at(gateway, '/.well-known/est'), device, await estCsrBody(device.cert, newSec1Key().key), 'mp-96');
      expect(est.error).toBeUndefined();
    } finally {
      clock = 0;
    }
  });

  it('refuses a lock that is no public key, of a refused type, or without a certificate; PATCH /config is refused', async () => {
    const device = await enroll();
    const gw = at(gateway);
    const cases: [unknown, number, string][] = [
      [{}, 400, 'next_pubkey_missing'],
      [{ next_pubkey: 'not a key' }, 400, 'pem_invalid'],
      [{ next_pubkey: device.cert }, 400, 'pem_invalid'],
      [{ next_pubkey: crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) }, 400, 'key_type_not_allowed'],
    ];
    for (const [body, status, code] of cases) {
      const a = await fioconfigRequest(gw, device, 'PATCH', '/device', body);
      expect([a.status, (json(a).error as { code: string }).code]).toEqual([status, code]);
    }
    const plain = await request(gw, device, 'PATCH', '/device', { 'Content-Type': 'text/plain' }, 'x');
    expect(plain.status).toBe(400);
    expect((await request(gw, null, 'PATCH', '/device', { 'Content-Type': 'application/json' }, '{}')).status).toBe(401);
    expect((await fioconfigRequest(gw, device, 'GET', '/config')).status).toBe(204);
    const patch = await fioconfigRequest(gw, device, 'PATCH', '/config', { reason: 'x', files: [] });
    expect([patch.status, (json(patch).error as { code: string }).code]).toEqual([409, 'device_config_unsupported']);
  });

  it('keeps events bounded and validated: a list of 1 to 50 well-formed events, 64 KiB at most', async () => {
    const device = await enroll();
    const gw = at(gateway);
    const one = rotationEvent('CertRotationStarted', 'c1');
    const cases: [unknown, string][] = [
      [[], 'events_invalid'],
      [{ not: 'a list' }, 'events_invalid'],
      [Array.from({ length: 51 }, () => one[0]), 'events_invalid'],
      [[{ ...one[0], eventType: { id: 'x\u0001', version: 0 } }], 'events_invalid'],
      [[{ ...one[0], event: { ...one[0]?.event, details: 'd'.repeat(3000) } }], 'events_invalid'],
      [[{ ...one[0], id: undefined }], 'events_invalid'],
    ];
    for (const [body, code] of cases) {
      const a = await fioconfigRequest(gw, device, 'POST', '/events', body);
      expect([a.status, (json(a).error as { code: string }).code]).toEqual([400, code]);
    }
    const huge = await fioconfigRequest(gw, device, 'POST', '/events', [{ ...one[0], padding: 'x'.repeat(70 * 1024) }]);
    expect(huge.status).toBe(413);
    expect(await deps.store.listAudit({ target: device.uuid, action: 'device.event' })).toHaveLength(0);
    const ok = await fioconfigRequest(gw, device, 'POST', '/events', [...one, ...rotationEvent('CertRotationCompleted', 'c1', 'Unable to obtain new certificate: HTTP_403')]);
    expect(json(ok)).toEqual({ recorded: 2 });
    const stored = await deps.store.listAudit({ target: device.uuid, action: 'device.event' });
    expect(stored.map((r) => [r.details?.type, r.details?.success])).toEqual([['CertRotationStarted', true], ['CertRotationCompleted', false]]);
    // Unknown members are dropped, not stored.
    await fioconfigRequest(gw, device, 'POST', '/events', [{ ...one[0], event: { ...one[0]?.event, injected: 'x' } }]);
    expect((await deps.store.listAudit({ target: device.uuid, action: 'device.event' }))[2]?.details).not.toHaveProperty('injected');
  });
});

describe("lmp-device-register's self-registration", () => {
  let token: { username: string; secret: string; id: string };

  beforeAll(async () => {
    const created = await service.createToken(operator, 'acme', { scopes: ['devices:register'], days: 30, description: 'line 3' });
    token = { username: created.username, secret: created.secret, id: created.id };
  });

  /** What the client sends: a key and CSR made with openssl's own API, all-string ptree JSON. */
  async function deviceRequest(uuid = randomUUID(), factory = 'acme', extra: Record<string, string> = {}) {
    const key = newSec1Key();
    const keyPair = { privateKeyPem: crypto.createPrivateKey(key.key).export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyPem: key.publicKeyPem };
    const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...keyPair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
    const body = {
      name: 'kiosk-7',
      uuid,
      csr,
      'hardware-id': 'intel-corei7-64',
      'sota-config-dir': '/var/sota',
      'use-ostree-server': 'true',
      overrides: { pacman: { type: '"ostree+compose_apps"', compose_apps_root: '"/var/sota/compose-apps"', tags: '"main"' } },
      ...extra,
    };
    return { uuid, key, body };
  }

  const api = () => at(gateway, '/ota/devices/');

  it('is reachable without a client certificate: HEAD and GET answer below 500', async () => {
    expect(await lmpPing(api())).toEqual({ reachable: true, status: 405 });
    const get = await request(api(), null, 'GET', '/ota/devices/', {});
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });

  it('registers with OSF-TOKEN: 201 with exactly the files the client writes, and the device then works', async () => {
    const { uuid, key, body } = await deviceRequest();
    const result = await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, ptreeJson(body));
    expect(result.answer.status).toBe(201);
    const files = result.files as Record<string, string>;
    expect(Object.keys(files).sort()).toEqual(['client.chained', 'client.pem', 'root.crt', 'sota.toml']);
    expect(files['root.crt']).toBe(material.caPem);
    const enrolled = (await deps.store.getDevice(uuid))!;
    expect(files['client.chained']).toBe(`${files['client.pem']}\n${(await deps.store.getDeviceCa(enrolled.caId))!.certificatePem}`);
    const sota = parse(files['sota.toml'] as string) as Record<string, Record<string, string>>;
    expect(sota.tls).toEqual({ server: 'https://gw.example.com:8443', ca_source: 'file', pkey_source: 'file', cert_source: 'file' });
    expect(sota.uptane?.repo_server).toBe('https://gw.example.com:8443/repo');
    expect(sota.import).toEqual({ tls_cacert_path: '/var/sota/root.crt', tls_pkey_path: '/var/sota/pkey.pem', tls_clientcert_path: '/var/sota/client.pem' });
    expect(sota.pacman).toMatchObject({ tags: 'main', type: 'ostree+compose_apps' });
    expect(sota.tollgate).toEqual({ registries: 'hub.example.com,127.0.0.1:5000' });
    expect(sota.provision?.primary_ecu_hardware_id).toBe('intel-corei7-64');
    // The key the device kept (SEC1, as lmp-device-register writes pkey.pem) opens the gateway.
    const device = await fioconfigRequest(at(gateway), { cert: files['client.pem'] as string, key: key.key }, 'GET', '/device');
    expect(json(device)).toMatchObject({ uuid, factory: 'acme', name: 'kiosk-7', state: 'active' });
    // The use is in the audit trail, naming the token.
    const records = await deps.store.listAudit({ target: uuid });
    expect(records.map((r) => [r.action, r.actor])).toEqual(expect.arrayContaining([['device.enrolled', `token:${token.id}`], ['device.registered', `token:${token.id}`]]));
  });

  it('takes the token as Authorization: Bearer, raw or base64 as the OAuth flow sends it, and serves many devices', async () => {
    for (const header of [`Bearer ${token.secret}`, `Bearer ${Buffer.from(token.secret).toString('base64')}`]) {
      const { body } = await deviceRequest();
      const result = await lmpRegister(api(), { Authorization: header }, ptreeJson(body));
      expect(result.answer.status).toBe(201);
    }
  });

  it('refuses with top-level fields the client prints, and audits every refusal', async () => {
    const other = await service.createToken(operator, 'acme', { scopes: ['devices:read'] });
    const expired = await service.createToken(operator, 'acme', { scopes: ['devices:register'], days: 1 });
    const { body } = await deviceRequest();
    const before = (await deps.store.listAudit({ action: 'device.register_refused', limit: 1000 })).length;

    const noToken = await lmpRegister(api(), {}, ptreeJson(body));
    expect(noToken.printed).toBe('Unable to create device: HTTP_401\ncode: registration_token_missing\nmessage: send the registration token in an OSF-TOKEN header (or Authorization: Bearer)\n');
    expect((await lmpRegister(api(), { 'OSF-TOKEN': 'tga_nonsense' }, ptreeJson(body))).printed).toMatch(/^Unable to create device: HTTP_401\ncode: registration_token_invalid\n/);
    expect((await lmpRegister(api(), { 'OSF-TOKEN': other.secret }, ptreeJson(body))).printed).toMatch(/^Unable to create device: HTTP_403\ncode: scope_missing\nmessage: .*devices:register/);
    clock = 2 * 86_400_000;
    try {
      expect((await lmpRegister(api(), { 'OSF-TOKEN': expired.secret }, ptreeJson(body))).printed).toMatch(/^Unable to create device: HTTP_401\ncode: token_expired\n/);
    } finally {
      clock = 0;
    }
    const invalid: [Record<string, unknown> | string, number, string][] = [
      [{ ...body, uuid: randomUUID() }, 400, 'uuid_mismatch'],
      [{ ...body, name: 7 }, 400, 'body_invalid'],
      [{ ...body, extra: { nested: 'x' } }, 400, 'body_invalid'],
      [{ ...body, group: 'lab' }, 400, 'group_not_supported'],
      [{ ...body, 'sota-config-dir': 'relative' }, 400, 'sota-config-dir_invalid'],
      [{ ...body, overrides: { pacman: { tags: '"x"\n[tls]\nserver = "https://evil"' } } }, 400, 'overrides_invalid'],
      [{ ...body, csr: 'nope' }, 400, 'pem_invalid'],
      ['{"uuid": ', 400, 'body_invalid_json'],
    ];
    for (const [payload, status, code] of invalid) {
      const a = await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, typeof payload === 'string' ? payload : JSON.stringify(payload));
      expect([a.answer.status, JSON.parse(a.answer.text).code], JSON.stringify(payload).slice(0, 80)).toEqual([status, code]);
      expect(a.printed).toContain('\nmessage: ');
    }
    // Another factory's device (OU) and a device already registered.
    const foreign = await deviceRequest(randomUUID(), 'other');
    expect(JSON.parse((await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, ptreeJson(foreign.body))).answer.text).code).toBe('factory_mismatch');
    const again = await deviceRequest();
    expect((await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, ptreeJson(again.body))).answer.status).toBe(201);
    const twice = await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, ptreeJson(again.body));
    expect([twice.answer.status, JSON.parse(twice.answer.text).code]).toEqual([409, 'device_exists']);
    const big = await lmpRegister(api(), { 'OSF-TOKEN': token.secret }, JSON.stringify({ ...body, padding: 'x'.repeat(1000), csr: body.csr + ' '.repeat(70 * 1024) }));
    expect(big.answer.status).toBe(413);

    const refusals = (await deps.store.listAudit({ action: 'device.register_refused', limit: 1000 })).length - before;
    expect(refusals).toBe(4 + invalid.length + 3);
  });

  it('makes registration tokens single-purpose and expiring; devices:write may hand them out', async () => {
    const code = async (body: { scopes: string[]; days?: number }, p: Principal = operator) => {
      try {
        await service.createToken(p, 'acme', body);
        return 'created';
      } catch (e) {
        return isTollgateError(e) ? e.code : String(e);
      }
    };
    expect(await code({ scopes: ['devices:register', 'containers:read'], days: 30 })).toBe('registration_scope_alone');
    expect(await code({ scopes: ['devices:register'] })).toBe('registration_token_expiry_required');
    expect(await code({ scopes: ['devices:register'], days: 366 })).toBe('registration_token_expiry_required');
    const admin = await service.createToken(operator, 'acme', { scopes: ['devices:write', 'tokens:write'] });
    const reader = await service.createToken(operator, 'acme', { scopes: ['devices:read', 'tokens:write'] });
    const principal = async (secret: string): Promise<Principal> => ({
      kind: 'token',
      token: (await deps.store.findTokenBySecretHash(crypto.createHash('sha256').update(secret).digest('hex')))!,
      source: null,
    });
    expect(await code({ scopes: ['devices:register'], days: 7 }, await principal(admin.secret))).toBe('created');
    expect(await code({ scopes: ['devices:register'], days: 7 }, await principal(reader.secret))).toBe('scope_not_grantable');
  });
});

describe("the realm's answer and aktualizr-lite's 1024-byte read cap", () => {
  it('fits with kid (the default), sized; with x5c it is cut off, as libcurl with CURLOPT_MAXFILESIZE cuts it', async () => {
    await createSigningKey(deps, system, { activate: true });
    const device = await enroll();
    const creds = await libcurlGet(`https://127.0.0.1:${gateway.port}/hub-creds/`, 1024, {}, { ca: material.caPem, identity: device, servername: 'localhost' });
    expect(creds.curlError).toBeUndefined();
    expect(Number(creds.headers['content-length'])).toBe(Buffer.byteLength(creds.body));
    const { Username, Secret } = JSON.parse(creds.body) as { Username: string; Secret: string };
    const basic = { authorization: `basic ${Buffer.from(`${Username}:${Secret}`).toString('base64')}` };
    const sizes: Record<string, number> = {};
    for (const hint of ['kid', 'x5c'] as const) {
      const svc = await startAuthsvc({
        config: { ...config, authsvc: { ...config.authsvc, listen: { host: '127.0.0.1', port: 0 }, tokenKeyHint: hint } },
        deps,
        log,
      });
      try {
        const url = `${svc.realmUrl}?service=tollgate-registry&scope=repository:acme/app:pull`;
        const uncapped = await libcurlGet(url, -1, basic);
        expect(uncapped.status).toBe(200);
        // Sized, never chunked: a capped reader learns the size before the body.
        expect(uncapped.headers['transfer-encoding']).toBeUndefined();
        expect(Number(uncapped.headers['content-length'])).toBe(Buffer.byteLength(uncapped.body));
        sizes[hint] = Buffer.byteLength(uncapped.body);
        const capped = await libcurlGet(url, 1024, basic);
        if (hint === 'kid') {
          expect(capped.curlError).toBeUndefined();
          expect(Object.keys(JSON.parse(capped.body))).toEqual(['token', 'expires_in', 'issued_at']);
        } else {
          expect(capped.curlError).toBe('Maximum file size exceeded');
        }
      } finally {
        await svc.close();
      }
    }
    expect(sizes.kid).toBeLessThanOrEqual(1024);
    expect(sizes.x5c).toBeGreaterThan(1024);
    console.info(`realm GET answer: ${sizes.kid} B with kid, ${sizes.x5c} B with x5c; hub-creds ${Buffer.byteLength(creds.body)} B`);
  });
});
