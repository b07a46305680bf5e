import { X509Certificate } from 'node:crypto';
import { isTollgateError } from '../errors.js';
import { FULL_RETRY_AFTER_SECONDS } from '../store/file-health.js';
import type { Store } from '../store/types.js';

/**
 * Readiness, as every service's `/readyz` answers it: each check a service really needs names its
 * state, `ok` or what is wrong, and the service is ready only when all are `ok`.
 *
 * `{"status": "ready", "store": "ok", "serverCertificate": "ok"}` or
 * `{"status": "unavailable", "store": "store_full", ...}` with 503 (and Retry-After).
 */

export type CheckResult = 'ok' | string;
export type ReadinessChecks = Record<string, () => CheckResult | Promise<CheckResult>>;

export interface ReadinessReport {
  ready: boolean;
  /** Seconds a client should wait before asking again (503 only). */
  retryAfterSeconds: number;
  body: Record<string, unknown>;
}

/** The store answers, its file is still the one at its path, and its disk has room. */
export function storeCheck(store: Pick<Store, 'ping'>): () => Promise<CheckResult> {
  return async () => {
    try {
      await store.ping();
      return 'ok';
    } catch (e) {
      return isTollgateError(e) ? e.code : 'unreachable';
    }
  };
}

/** A certificate this service presents or signs with is within its dates. */
export function certificateCheck(certificate: () => string | Buffer | null | undefined, now: () => number = Date.now): () => CheckResult {
  return () => {
    const input = certificate();
    if (input === null || input === undefined) return 'missing';
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(input);
    } catch {
      return 'unreadable';
    }
    const at = now();
    if (Date.parse(cert.validTo) <= at) return 'expired';
    if (Date.parse(cert.validFrom) > at) return 'not_yet_valid';
    return 'ok';
  };
}

export async function assessReadiness(checks: ReadinessChecks, extra: Record<string, unknown> = {}): Promise<ReadinessReport> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map(async (name) => [name, await checks[name]!()] as const));
  const ready = results.every(([, r]) => r === 'ok');
  const body: Record<string, unknown> = { status: ready ? 'ready' : 'unavailable', ...Object.fromEntries(results), ...(ready ? extra : {}) };
  // A full disk is not fixed in a second; anything else may be (a lock, a key being loaded).
  const retryAfterSeconds = results.some(([, r]) => r === 'store_full') ? FULL_RETRY_AFTER_SECONDS : 1;
  return { ready, retryAfterSeconds, body };
}
