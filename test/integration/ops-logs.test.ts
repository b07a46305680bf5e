import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../../admin/server.js';
import { AdminService } from '../../admin/service.js';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, createSigningKey, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/**
 * The three services' log output through a flow that creates every kind of secret Tollgate hands
 * out: no secret may appear in any line, and each security decision leaves one audit line.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const system = { actor: 'system' };

const lines: string[] = [];
const sink = { write: (s: string) => void lines.push(s) };

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let material: GatewayTlsMaterial;
let gateway: RunningGateway;
let admin: RunningAdmin;
let authsvc: RunningAuthsvc;
const secrets: Record<string, string> = {};
let bootstrapId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-ops-logs-'));
  config = loadConfig({
    env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0', TOLLGATE_ADMIN_LISTEN_PORT: '0', TOLLGATE_AUTHSVC_LISTEN_PORT: '0' },
    cwd: dir,
  });
  deps = openAuthority(config);
  material = await developmentGatewayTls(config);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'acme'));
  await createSigningKey(deps, system, { activate: true });
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log: createLogger('gateway', 'debug', sink) });
  admin = await startAdmin({ config, deps, log: createLogger('admin', 'debug', sink), gatewayCa: material.caPem });
  authsvc = await startAuthsvc({ config, deps, log: createLogger('authsvc', 'debug', sink), keyringPollMs: 0 });
  const bootstrap = await new AdminService(deps).createToken({ kind: 'operator' }, 'acme', { scopes: ['devices:write', 'devices:read', 'tokens:write', 'containers:read'] });
  secrets.adminBearer = bootstrap.secret;
  bootstrapId = bootstrap.id;
});

afterAll(async () => {
  await Promise.all([gateway?.close(), admin?.close(), authsvc?.close()]);
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function adminPost(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${admin.port}/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.adminBearer}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function hubCreds(key: string, cert: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: gateway.port, path: '/hub-creds/', ca: material.caPem, servername: 'localhost', key, cert, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const realm = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${authsvc.port}/token${path}`, init);
const form = (fields: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

function records(): Record<string, unknown>[] {
  return lines.join('').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('logs', () => {
  it('carry no secret through a flow that creates every kind of secret, and audit each decision', async () => {
    // Enrollment through the admin API.
    const uuid = randomUUID();
    const pair = generateKeyPair('ec-p256');
    secrets.devicePrivateKey = pair.privateKeyPem.replace(/-----[A-Z ]+-----|\s/g, '').slice(0, 64);
    const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'acme' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
    const enrolled = await adminPost('/factories/acme/devices', { csr });
    expect(enrolled.status).toBe(201);
    const cert = enrolled.body.certificate as string;

    // Gateway mint.
    const minted = await hubCreds(pair.privateKeyPem, cert);
    expect(minted.status).toBe(200);
    secrets.deviceToken = minted.body.Secret as string;
    const username = minted.body.Username as string;

    // Realm exchange: Basic, then a refusal.
    const basic = await realm(`?service=tollgate-registry&scope=repository:acme/app:pull`, {
      headers: { authorization: basicAuthorization(username, secrets.deviceToken) },
    });
    expect(basic.status).toBe(200);
    secrets.registryJwt = ((await basic.json()) as { token: string }).token;
    secrets.wrongPassword = 'tgd_' + 'Q'.repeat(43);
    const wrong = await realm('', form({ grant_type: 'password', username, password: secrets.wrongPassword, service: 'tollgate-registry', client_id: 'test' }));
    expect(wrong.status).toBe(401);

    // Admin token create, used at the realm.
    const created = await adminPost('/factories/acme/tokens', { scopes: ['containers:read'] });
    expect(created.status).toBe(201);
    secrets.apiToken = created.body.secret as string;
    const ci = await realm(`?service=tollgate-registry&scope=repository:acme/app:pull`, {
      headers: { authorization: basicAuthorization(created.body.username as string, secrets.apiToken) },
    });
    expect(ci.status).toBe(200);
    secrets.ciJwt = ((await ci.json()) as { token: string }).token;
    // An offline token for it, then the refresh grant.
    const offline = await realm(`?service=tollgate-registry&scope=repository:acme/app:pull&offline_token=true`, {
      headers: { authorization: basicAuthorization(created.body.username as string, secrets.apiToken) },
    });
    secrets.refreshToken = ((await offline.json()) as { refresh_token: string }).refresh_token;
    const refreshed = await realm('', form({ grant_type: 'refresh_token', refresh_token: secrets.refreshToken, service: 'tollgate-registry', client_id: 'test' }));
    expect(refreshed.status).toBe(200);
    secrets.refreshedJwt = ((await refreshed.json()) as { access_token: string }).access_token;

    // State change, then a refused mint.
    expect((await adminPost(`/factories/acme/devices/${uuid}/disable`, {})).status).toBe(200);
    expect((await hubCreds(pair.privateKeyPem, cert)).status).toBe(403);

    // Key rotation, made elsewhere and noticed by the realm.
    await createSigningKey(deps, system, { activate: true });
    await authsvc.keyring.check();

    for (const [name, value] of Object.entries(secrets)) {
      expect(value, name).toBeTruthy();
      for (const line of lines) expect(line.includes(value), `${name} found in: ${line.slice(0, 300)}`).toBe(false);
    }

    const logged = records();
    const audit = logged.filter((r) => r.component === 'audit').map((r) => r.action);
    for (const action of [
      'device.enrolled',
      'token.minted',
      'realm.token_issued',
      'realm.refused',
      'token.created',
      'device.disabled',
      'token.refused',
      'signing_key.rotated',
    ]) {
      expect(audit, action).toContain(action);
    }

    const mint = logged.find((r) => r.component === 'http' && r.route === '/hub-creds' && (r.res as { statusCode: number }).statusCode === 200);
    expect(mint).toMatchObject({ device: uuid, req: { method: 'GET', path: '/hub-creds/' } });
    expect(typeof mint?.responseTime).toBe('number');
    const exchange = logged.find((r) => r.component === 'http' && r.route === '/token' && r.subject === username);
    expect(exchange).toMatchObject({ service: 'authsvc', res: { statusCode: 200 } });
    const adminLine = logged.find((r) => r.component === 'http' && r.route === '/factories/:factory/tokens');
    expect(adminLine).toMatchObject({ service: 'admin', tokenId: bootstrapId, res: { statusCode: 201 } });
    expect(logged.some((r) => JSON.stringify(r).toLowerCase().includes('"authorization"'))).toBe(false);
  });
});
