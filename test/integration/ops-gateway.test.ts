import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, createSigningKey, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/** The gateway's operational surface over real TLS: metrics, limits on /hub-creds/, readiness. */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const system = { actor: 'system' };
const log = createLogger('ops-gateway-test', 'silent');

let dir: string;
let config: LoadedConfig;
let deps: AuthorityDeps & { store: SqlStore };
let material: GatewayTlsMaterial;
let gateway: RunningGateway;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-ops-gateway-'));
  config = loadConfig({
    env: {
      TOLLGATE_GATEWAY_LISTEN_PORT: '0',
      TOLLGATE_LIMITS_PER_DEVICE_BURST: '3',
      TOLLGATE_LIMITS_PER_DEVICE_PER_SECOND: '0.1',
    },
    cwd: dir,
  });
  deps = openAuthority(config);
  material = await developmentGatewayTls(config);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'acme'));
  await createSigningKey(deps, system, { activate: true });
  gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
});

afterAll(async () => {
  await gateway?.close();
  try {
    deps?.store.close();
  } catch {
    // closed by the readiness test
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function get(path: string, creds: { key: string; cert: string } | null = null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: gateway.port, path, ca: material.caPem, servername: 'localhost', agent: false, ...(creds ?? {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function enroll(): Promise<{ key: string; cert: string }> {
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({ subject: { commonName: randomUUID(), organizationalUnit: 'acme' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const enrolled = await new AdminService(deps).enroll({ kind: 'operator' }, 'acme', { csr });
  return { key: pair.privateKeyPem, cert: enrolled.certificate };
}

describe('gateway operations', () => {
  it('limits each device on its own and answers 429 with Retry-After', async () => {
    const a = await enroll();
    const b = await enroll();
    const answers = await Promise.all(Array.from({ length: 5 }, () => get('/hub-creds/', a)));
    expect(answers.map((x) => x.status).sort()).toEqual([200, 200, 200, 429, 429]);
    const refused = answers.find((x) => x.status === 429)!;
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'rate_limited' } });
    expect((await get('/hub-creds/', b)).status).toBe(200);
  });

  it('counts into its metrics, and serves none on the device port', async () => {
    await get('/hub-creds/'); // no certificate: refused, counted
    expect((await get('/metrics')).status).toBe(404);
    const res = { text: (await gateway.metrics.scrape()).body };
    expect(res.text).toContain('tollgate_tokens_issued_total{service="gateway",kind="device"} 4');
    expect(res.text).toContain('tollgate_tokens_refused_total{service="gateway",reason="rate_limited"} 2');
    expect(res.text).toContain('tollgate_tokens_refused_total{service="gateway",reason="certificate_required"} 1');
    expect(res.text).toContain('tollgate_tls_client_cert_failures_total{reason="certificate_required"} 1');
    expect(res.text).toContain('tollgate_devices{state="active"} 2');
    expect(res.text).toMatch(/tollgate_signing_key_info\{kid="[^"]+",alg="ES256"\} 1/);
    expect(res.text).toMatch(/tollgate_http_request_duration_seconds_count\{service="gateway",route="\/hub-creds",method="GET",status="200"\} 4/);
  });

  it('is ready with its store and answers 503 on /readyz once the store is closed, still alive', async () => {
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: 'ready', store: 'ok', serverCertificate: 'ok' });
    deps.store.close();
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toMatchObject({ status: 'unavailable', store: 'unreachable' });
    expect((await get('/healthz')).status).toBe(200);
  });
});
