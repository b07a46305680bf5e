import { describe, expect, it } from 'vitest';
import { commit, createEventBus, record, type DomainEvent } from '../../shared/authority/events.js';
import { createLogger } from '../../shared/log.js';
import { serviceEvents, tokenCounters } from '../../shared/ops/event-subscribers.js';
import { createMetrics } from '../../shared/ops/metrics.js';
import type { AuditEntry } from '../../shared/store/types.js';

/** A store stand-in with only the method these tests call. */
function fakeStore(fail = false) {
  const written: AuditEntry[] = [];
  const store = {
    async appendAudit(e: AuditEntry) {
      if (fail) throw new Error('disk full');
      written.push(e);
    },
  };
  return { store, written };
}

const value = async (m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>) => {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
};

const issued = (via: string): DomainEvent => ({ type: 'realm.token_issued', actor: 'device:d', details: { scope: '', jti: 'j', kid: 'k', via, refreshTokenId: 'r' } });

describe('domain events', () => {
  it('count issued and refused credentials once committed, and the store keeps each audit record', async () => {
    const metrics = createMetrics('authsvc');
    const seen: string[] = [];
    const { store, written } = fakeStore();
    const deps = { store, events: createEventBus([(e) => seen.push(e.type), tokenCounters(metrics)]) };
    await record(deps, issued('basic'));
    await record(deps, issued('refresh_token'));
    await record(deps, { type: 'realm.refused', actor: 'anonymous', reason: 'token_unknown' });
    await record(deps, { type: 'token.refused', actor: 'anonymous', reason: 'certificate_expired' });
    await record(deps, { type: 'device.refused', actor: 'anonymous', reason: 'certificate_expired' });
    await commit(deps, { type: 'token.revoked', actor: 'operator', target: 't1' }, async (audit) => {
      written.push(audit);
    });
    expect(seen).toEqual(['realm.token_issued', 'realm.token_issued', 'realm.refused', 'token.refused', 'device.refused', 'token.revoked']);
    expect(written.map((w) => [w.action, w.outcome])).toEqual([
      ['realm.token_issued', 'success'],
      ['realm.token_issued', 'success'],
      ['realm.refused', 'denied'],
      ['token.refused', 'denied'],
      ['device.refused', 'denied'],
      ['token.revoked', 'success'],
    ]);
    expect(await value(metrics, 'tollgate_tokens_issued_total', { kind: 'registry' })).toBe(2);
    expect(await value(metrics, 'tollgate_tokens_issued_total', { kind: 'refresh' })).toBe(1);
    expect(await value(metrics, 'tollgate_tokens_refused_total', { reason: 'token_unknown' })).toBe(1);
    // Device routes other than the mint are not credential requests: counted as TLS failures only through the mint.
    expect(await value(metrics, 'tollgate_tls_client_cert_failures_total', { reason: 'certificate_expired' })).toBe(1);
  });

  it('publish nothing for a write that failed, nor for a change the store did not make', async () => {
    const seen: DomainEvent[] = [];
    const events = createEventBus([(e) => seen.push(e)]);
    await expect(record({ store: fakeStore(true).store, events }, { type: 'token.minted', actor: 'x', details: { tokenId: 't', expiresAt: '' } })).rejects.toThrow('disk full');
    await commit({ events }, { type: 'device.certificate_superseded', actor: 'x', details: { fingerprint256: 'a', supersededBy: 'b' } }, async () => false, { publishedIf: (done) => done });
    expect(seen).toEqual([]);
  });

  it('go on to the other subscribers when one throws', async () => {
    const seen: string[] = [];
    const bus = createEventBus([
      () => {
        throw new Error('broken sink');
      },
      (e) => seen.push(e.type),
    ]);
    await record({ store: fakeStore().store, events: bus }, { type: 'factory.created', actor: 'operator' });
    expect(seen).toEqual(['factory.created']);
    expect(() => serviceEvents({ log: createLogger('t', 'silent') }).publish({ type: 'factory.created', actor: 'operator' })).not.toThrow();
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
