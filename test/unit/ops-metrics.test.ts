import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/log.js';
import { auditSink, observeAudit } from '../../shared/ops/audit-observer.js';
import { createMetrics } from '../../shared/ops/metrics.js';
import type { AuditEntry, Store } from '../../shared/store/types.js';

/** A store stand-in with only the methods these tests call. */
function fakeStore(fail = false) {
  const written: AuditEntry[] = [];
  const store = {
    async appendAudit(e: AuditEntry) {
      if (fail) throw new Error('disk full');
      written.push(e);
    },
    async revokeToken(_id: string, e: AuditEntry) {
      written.push(e);
    },
    async ping() {},
  };
  return { store: store as unknown as Store, written };
}

const value = async (m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>) => {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
};

describe('audit observation', () => {
  it('counts issued and refused credentials from the audit entries the store accepted', async () => {
    const metrics = createMetrics('authsvc');
    const seen: string[] = [];
    const { store } = fakeStore();
    const sink = auditSink({ log: createLogger('t', 'silent'), metrics });
    const observed = observeAudit(store, (e) => {
      seen.push(e.action);
      sink(e);
    });
    await observed.appendAudit({ actor: 'device:d', action: 'realm.token_issued', outcome: 'success', details: { via: 'basic', refreshTokenId: 'r' } });
    await observed.appendAudit({ actor: 'device:d', action: 'realm.token_issued', outcome: 'success', details: { via: 'refresh_token', refreshTokenId: 'r' } });
    await observed.appendAudit({ actor: 'anonymous', action: 'realm.refused', outcome: 'denied', reason: 'token_unknown' });
    await observed.appendAudit({ actor: 'anonymous', action: 'token.refused', outcome: 'denied', reason: 'certificate_expired' });
    await observed.revokeToken('t1', { actor: 'operator', action: 'token.revoked', outcome: 'success', target: 't1' });
    await observed.ping();
    expect(seen).toEqual(['realm.token_issued', 'realm.token_issued', 'realm.refused', 'token.refused', 'token.revoked']);
    expect(await value(metrics, 'tollgate_tokens_issued_total', { kind: 'registry' })).toBe(2);
    expect(await value(metrics, 'tollgate_tokens_issued_total', { kind: 'refresh' })).toBe(1);
    expect(await value(metrics, 'tollgate_tokens_refused_total', { reason: 'token_unknown' })).toBe(1);
    expect(await value(metrics, 'tollgate_tls_client_cert_failures_total', { reason: 'certificate_expired' })).toBe(1);
  });

  it('reports nothing for a write that failed', async () => {
    const seen: AuditEntry[] = [];
    const observed = observeAudit(fakeStore(true).store, (e) => seen.push(e));
    await expect(observed.appendAudit({ actor: 'x', action: 'token.minted', outcome: 'success' })).rejects.toThrow('disk full');
    expect(seen).toEqual([]);
  });
});

describe('metrics registries', () => {
  it('are separate per service and read the store and the key at scrape time', async () => {
    let kid = 'k1';
    const a = createMetrics('gateway', {
      countDevicesByState: async () => ({ active: 3, pending: 1, disabled: 0, revoked: 2 }),
      activeSigningKey: () => ({ kid, alg: 'ES256' }),
    });
    const b = createMetrics('gateway');
    a.tokensIssued.inc({ service: 'gateway', kind: 'device' });
    const first = (await a.scrape()).body;
    expect(first).toContain('tollgate_devices{state="active"} 3');
    expect(first).toContain('tollgate_signing_key_info{kid="k1",alg="ES256"} 1');
    kid = 'k2';
    const second = (await a.scrape()).body;
    expect(second).toContain('tollgate_signing_key_info{kid="k2",alg="ES256"} 1');
    expect(second).not.toContain('kid="k1"');
    expect((await b.scrape()).body).not.toContain('kind="device"} 1');
    expect((await b.scrape()).body).not.toContain('tollgate_devices');
  });
});
