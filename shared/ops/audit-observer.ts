import type { Logger } from '../log.js';
import type { AuditEntry, Store } from '../store/types.js';
import type { ServiceMetrics } from './metrics.js';

/**
 * Every security decision already reaches the store as an audit entry, written in the same
 * transaction as the change it describes. Observing those entries, once the write succeeded, gives
 * the `audit` log line and the token counters from one place, for every flow present and future,
 * instead of a log call next to each decision.
 */

/** Audit actions that hand out a credential, and the metric kind they count as. */
const ISSUED: Record<string, string> = {
  'token.minted': 'device',
  'token.created': 'api',
  'realm.token_issued': 'registry',
};

/** Audit actions that refuse a credential request. */
const REFUSED = new Set(['token.refused', 'realm.refused']);

function isAuditEntry(v: unknown): v is AuditEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.actor === 'string' && typeof e.action === 'string' && (e.outcome === 'success' || e.outcome === 'denied');
}

/** The audit fields fit for a log line: all of them are non-secret by the store's contract. */
function logFields(e: AuditEntry): Record<string, unknown> {
  return {
    actor: e.actor,
    action: e.action,
    outcome: e.outcome,
    target: e.target ?? null,
    reason: e.reason ?? null,
    source: e.source ?? null,
    factoryId: e.factoryId ?? null,
    ...(e.details ? { details: e.details } : {}),
  };
}

export interface AuditObserverOptions {
  log: Logger;
  metrics?: ServiceMetrics;
}

/** Called for each audit entry the store accepted. */
export function auditSink({ log, metrics }: AuditObserverOptions): (e: AuditEntry) => void {
  const audit = log.child({ component: 'audit' });
  return (e) => {
    audit.info(logFields(e), e.action);
    if (!metrics) return;
    const kind = ISSUED[e.action];
    if (kind && e.outcome === 'success') {
      metrics.tokensIssued.inc({ service: metrics.service, kind });
      // A realm answer with a new refresh token issues two credentials.
      if (e.action === 'realm.token_issued' && e.details && 'refreshTokenId' in e.details && e.details.via !== 'refresh_token') {
        metrics.tokensIssued.inc({ service: metrics.service, kind: 'refresh' });
      }
    }
    if (REFUSED.has(e.action) && e.outcome === 'denied') {
      const reason = e.reason ?? 'unknown';
      metrics.tokensRefused.inc({ service: metrics.service, reason });
      if (reason.startsWith('certificate_')) metrics.tlsClientCertFailures.inc({ reason });
    }
  };
}

/**
 * The store, with every audit entry passed to `sink` after the method that carried it resolved.
 * Any method argument shaped like an audit entry counts, so methods added later are covered too.
 */
export function observeAudit<S extends Store>(store: S, sink: (e: AuditEntry) => void): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        // Batch writes carry their entries in a list of `{ ..., audit }` items.
        const entries = args.flatMap((a) => (Array.isArray(a) ? a.map((x: unknown) => (x as { audit?: unknown } | null)?.audit ?? x) : [a])).filter(isAuditEntry);
        if (entries.length === 0 || !(result instanceof Promise)) return result;
        return result.then((r: unknown) => {
          for (const e of entries) sink(e);
          return r;
        });
      };
    },
  });
}
