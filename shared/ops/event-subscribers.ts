import { auditRecordOf, createEventBus, isRefusal, type DomainEvent, type EventPublisher, type EventSubscriber } from '../authority/events.js';
import { fixedFieldsLogger, type Logger } from '../log.js';
import type { ServiceMetrics } from './metrics.js';

/**
 * What a service does with the authority's events once they are committed (their audit records are
 * already in the store, written in the same transaction as the change): one `audit` log line each,
 * and the token counters. A new consumer of events is one more subscriber here.
 */

/** One `component: "audit"` line per event, with the audit record's fields (none of them secret). */
export function auditLogLines(log: Logger): EventSubscriber {
  const audit = fixedFieldsLogger(log, { component: 'audit' });
  return (event) => {
    if (!audit.isLevelEnabled('info')) return;
    const r = auditRecordOf(event);
    audit.info(
      {
        actor: r.actor,
        action: r.action,
        outcome: r.outcome,
        target: r.target,
        reason: r.reason,
        source: r.source,
        factoryId: r.factoryId,
        ...(r.details ? { details: r.details } : {}),
      },
      r.action,
    );
  };
}

/** The metric kind of each event that hands out a credential. */
function issuedKinds(event: DomainEvent): string[] {
  switch (event.type) {
    case 'token.minted':
      return ['device'];
    case 'token.created':
      return ['api'];
    case 'realm.token_issued':
      // A realm answer with a new refresh token issues two credentials.
      return event.details.refreshTokenId !== undefined && event.details.via !== 'refresh_token' ? ['registry', 'refresh'] : ['registry'];
    default:
      return [];
  }
}

/** tollgate_tokens_issued_total, tollgate_tokens_refused_total and the client-certificate failures. */
export function tokenCounters(metrics: ServiceMetrics): EventSubscriber {
  return (event) => {
    for (const kind of issuedKinds(event)) metrics.tokensIssued.inc({ service: metrics.service, kind });
    // Refusals of a credential request: the gateway's mint and the realm (not other device routes).
    if (isRefusal(event) && (event.type === 'token.refused' || event.type === 'realm.refused')) {
      metrics.tokensRefused.inc({ service: metrics.service, reason: event.reason });
      if (event.reason.startsWith('certificate_') || event.reason.startsWith('ca_')) metrics.tlsClientCertFailures.inc({ reason: event.reason });
    }
  };
}

export interface ServiceEventOptions {
  log: Logger;
  metrics?: ServiceMetrics;
}

/** The event bus of one service: its log lines and, when it has them, its metrics. */
export function serviceEvents({ log, metrics }: ServiceEventOptions): EventPublisher {
  return createEventBus([auditLogLines(log), ...(metrics ? [tokenCounters(metrics)] : [])]);
}
