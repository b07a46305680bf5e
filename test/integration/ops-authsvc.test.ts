import { beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import type { DeviceAuthView } from '../../shared/store/index.js';
import { realmStarter, type RunningRealm } from '../support/authsvc.js';
import type { Credentials } from '../support/store.js';

/**
 * authsvc's operational surface on a real listener: limits, metrics, readiness and the purge.
 */

const SERVICE = 'tollgate-registry';
const start = realmStarter('ops-authsvc-test');

type Running = RunningRealm;

function tokenUrl(r: Running): string {
  return `http://127.0.0.1:${r.authsvc.port}/token?service=${SERVICE}&scope=repository:acme/app:pull`;
}

function realmGet(r: Running, creds: Credentials): Promise<Response> {
  return fetch(tokenUrl(r), { headers: { authorization: basicAuthorization(creds.username, creds.secret) } });
}

describe('request limits at the realm', () => {
  let r: Running;
  let device: DeviceAuthView;
  let creds: Credentials;

  beforeAll(async () => {
    r = await start();
    device = await r.t.device(r.factory);
    creds = await r.t.deviceToken(device);
  });

  it('lets one device pull 30 images in parallel with the default limits', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => realmGet(r, creds)));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 30 }, () => 200));
  });

  it('answers a device that keeps asking with 429 and Retry-After; another device still passes', async () => {
    const small = await start({ limits: { perDevice: { burst: 5, perSecond: 0.2 } } });
    const a = await small.t.deviceToken(await small.t.device(small.factory));
    const b = await small.t.deviceToken(await small.t.device(small.factory));
    const answers = await Promise.all(Array.from({ length: 8 }, () => realmGet(small, a)));
    const statuses = answers.map((x) => x.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    const refused = answers.find((x) => x.status === 429)!;
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await refused.json()) as { errors: { code: string; detail: { reason: string } }[] };
    expect(body.errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', detail: { reason: 'rate_limited' } });
    expect((await realmGet(small, b)).status).toBe(200);
  });

  it('blocks an address that keeps failing, longer each time', async () => {
    const strict = await start({ limits: { failures: { threshold: 2, windowSeconds: 60, blockSeconds: 1, maxBlockSeconds: 8 } } });
    const bad = { username: 'nobody', secret: 'tgd_' + 'A'.repeat(43) };
    expect((await realmGet(strict, bad)).status).toBe(401);
    expect((await realmGet(strict, bad)).status).toBe(401); // second failure: blocked for 1 s
    const first = await realmGet(strict, bad);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await realmGet(strict, bad)).status).toBe(401); // third failure: blocked for 2 s
    const second = await realmGet(strict, bad);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('2');
    // The block holds for valid credentials from that address too.
    const good = await strict.t.deviceToken(await strict.t.device(strict.factory));
    expect((await realmGet(strict, good)).status).toBe(429);
  });
});

describe('metrics', () => {
  it('counts issued and refused tokens, request durations, devices and the active key', async () => {
    const r = await start();
    const device = await r.t.device(r.factory);
    const creds = await r.t.deviceToken(device);
    expect((await realmGet(r, creds)).status).toBe(200);
    expect((await realmGet(r, { username: creds.username, secret: 'tgd_' + 'B'.repeat(43) })).status).toBe(401);
    // Metrics have their own listener (see metrics.test.ts); the realm's port serves none.
    expect((await fetch(`http://127.0.0.1:${r.authsvc.port}/metrics`)).status).toBe(404);
    const { contentType, body: text } = await r.authsvc.metrics.scrape();
    expect(contentType).toContain('text/plain');
    expect(text).toContain('tollgate_tokens_issued_total{service="authsvc",kind="registry"} 1');
    expect(text).toMatch(/tollgate_tokens_refused_total\{service="authsvc",reason="(token_unknown|secret_malformed)"\} 1/);
    expect(text).toContain('tollgate_devices{state="active"} 1');
    expect(text).toContain('tollgate_devices{state="revoked"} 0');
    const kid = r.authsvc.keyring.active!.kid;
    expect(text).toContain(`tollgate_signing_key_info{kid="${kid}",alg="ES256"} 1`);
    expect(text).toMatch(/tollgate_http_request_duration_seconds_count\{service="authsvc",route="\/token",method="GET",status="200"\} 1/);
    expect(text).not.toContain(creds.secret);
  });

  it('keeps each service in its own registry', async () => {
    const a = await start();
    const b = await start();
    const creds = await a.t.deviceToken(await a.t.device(a.factory));
    expect((await realmGet(a, creds)).status).toBe(200);
    const textB = (await b.authsvc.metrics.scrape()).body;
    expect(textB).not.toContain('tollgate_tokens_issued_total{service="authsvc",kind="registry"} 1');
  });
});

describe('health', () => {
  it('is alive and ready with a store and an active key, and not ready once the store is gone', async () => {
    const r = await start();
    const base = `http://127.0.0.1:${r.authsvc.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', store: 'ok', signingKey: 'ok', kid: r.authsvc.keyring.active!.kid });
    r.t.deps.store.close();
    const gone = await fetch(`${base}/readyz`);
    expect(gone.status).toBe(503);
    expect(await gone.json()).toMatchObject({ status: 'unavailable', store: 'unreachable' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('is not ready without an active signing key', async () => {
    const { authsvc } = await start({}, { signingKey: false });
    const res = await fetch(`http://127.0.0.1:${authsvc.port}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'unavailable', store: 'ok', signingKey: 'missing' });
  });
});

describe('expired-token purge', () => {
  it('deletes expired tokens on its schedule', async () => {
    const r = await start({ maintenance: { purgeIntervalSeconds: 1 } });
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    r.t.setNow(twoDaysAgo);
    const expired = await r.t.apiToken(r.factory, ['containers:read'], 1);
    r.t.setNow(null);
    const live = await r.t.apiToken(r.factory, ['containers:read'], 30);
    expect(await r.t.deps.store.getToken(expired.id)).not.toBeNull();
    const deadline = Date.now() + 5000;
    while ((await r.t.deps.store.getToken(expired.id)) !== null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await r.t.deps.store.getToken(expired.id)).toBeNull();
    expect(await r.t.deps.store.getToken(live.id)).not.toBeNull();
  });
});
