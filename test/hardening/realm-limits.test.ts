import { describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { realmStarter, type RunningRealm } from '../support/authsvc.js';
import type { Credentials } from '../support/store.js';

/**
 * The realm's limits against someone who knows a device's UUID but not its token: the per-subject
 * bucket is the proved subject's, so the prober cannot spend the device's requests; and every
 * refusal from a source, also one answered before any credentials were checked (400), counts toward
 * that source's back-off. Refused requests are counted in the metrics.
 */

const SERVICE = 'tollgate-registry';
const startRealm = realmStarter('realm-limits-test');
const start = (limits: Record<string, unknown>) => startRealm({ limits });

type Running = RunningRealm;

function realmGet(r: Running, creds: Credentials | null, service = SERVICE): Promise<Response> {
  const url = `http://127.0.0.1:${r.authsvc.port}/token?service=${encodeURIComponent(service)}&scope=repository:acme/app:pull`;
  return fetch(url, creds ? { headers: { authorization: basicAuthorization(creds.username, creds.secret) } } : {});
}

async function reason(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { errors?: { detail?: { reason?: string } }[] }).errors?.[0]?.detail?.reason;
}

describe('the per-subject limit at the realm', () => {
  it('is never spent by requests that merely name a device: only by the device itself', async () => {
    // Back-off out of the way: this is about the subject's bucket.
    const r = await start({ perDevice: { burst: 3, perSecond: 0.01 }, failures: { threshold: 10_000 } });
    const victim = await r.t.deviceToken(await r.t.device(r.factory));
    const forged = { username: victim.username, secret: 'tgd_' + 'A'.repeat(43) };
    for (let i = 0; i < 10; i++) expect((await realmGet(r, forged)).status).toBe(401);
    expect((await realmGet(r, victim)).status).toBe(200);

    // The device's own requests still spend its bucket.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await realmGet(r, victim)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });
});

describe('the back-off of a source', () => {
  it('counts requests refused before their credentials were checked', async () => {
    const r = await start({ failures: { threshold: 3, windowSeconds: 60, blockSeconds: 30, maxBlockSeconds: 60 } });
    const device = await r.t.deviceToken(await r.t.device(r.factory));
    for (let i = 0; i < 3; i++) {
      const bad = await realmGet(r, device, 'another-registry');
      expect([bad.status, await reason(bad)]).toEqual([400, 'service_unknown']);
    }
    const blocked = await realmGet(r, device);
    expect(blocked.status).toBe(429);
    expect(await reason(blocked)).toBe('credentials_backoff');
    const { body } = await r.authsvc.metrics.scrape();
    expect(body).toMatch(/tollgate_tokens_refused_total\{service="authsvc",reason="service_unknown"\} 3/);
    expect(body).toMatch(/tollgate_tokens_refused_total\{service="authsvc",reason="credentials_backoff"\} 1/);
  });
});
