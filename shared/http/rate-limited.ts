import type { ServiceMetrics } from '../ops/metrics.js';
import type { LimitVerdict } from '../ops/rate-limit.js';

/**
 * The 429 every limited route answers: the reason, a message, the Retry-After header, and the
 * refusal counted in the metrics. The gateway writes it as Tollgate's JSON error, the realm in the
 * dialect of the request (authsvc/realm/render.ts).
 */
export interface RateLimitedAnswer {
  status: 429;
  reason: LimitVerdict['reason'];
  message: string;
  headers: { 'Retry-After': string };
}

/** `what`: what the client asks too often for, e.g. `requests` or `token requests`. */
export function rateLimited(verdict: LimitVerdict, what: string, metrics?: ServiceMetrics): RateLimitedAnswer {
  metrics?.tokensRefused.inc({ service: metrics.service, reason: verdict.reason });
  const wait = verdict.retryAfterSeconds;
  const message =
    verdict.reason === 'rate_limited' ? `too many ${what}; retry after ${wait} s` : `too many failed authentications from this address; retry after ${wait} s`;
  return { status: 429, reason: verdict.reason, message, headers: { 'Retry-After': String(wait) } };
}
