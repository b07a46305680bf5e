import { conflict, invalidInput, isTollgateError } from '../../errors.js';
import type { Factory } from '../../store/types.js';
import { by, type Actor, type AuthorityDeps } from '../context.js';
import { commitAll } from '../events.js';
import { certificateEnrollment } from './certificate.js';
import { csrEnrollment } from './csr.js';
import { newDevice, prepareEnrollment, type EnrollmentClaim, type PreparedEnrollment } from './method.js';
import type { Enrolled } from './types.js';

/**
 * Many devices at once, all or nothing: every row passes the same checks as a single enrollment
 * (method.ts) and has its certificate signed first; if any row is refused, nothing is written and
 * the result names each row's fate. Then every device and its event are written in one transaction.
 */

/** One row: a CSR (signed by the online CA) or a certificate a factory CA issued. */
export type BulkEnrollmentRow = ({ csrPem: unknown; days?: unknown } | { certificatePem: unknown }) & { name?: unknown };

export type BulkRowResult = { row: number; uuid: string; ok: true } | { row: number; uuid: string | null; ok: false; code: string; message: string };

/** The most rows one bulk enrollment takes: a batch a person can still read the results of. */
export const BULK_ENROLLMENT_MAX_ROWS = 500;

type Prepared = PreparedEnrollment<EnrollmentClaim & { name: string | null }> & { via: 'csr' | 'certificate' };

function prepareRow(deps: AuthorityDeps, actor: Actor, factory: Factory, row: BulkEnrollmentRow): Promise<Prepared> {
  if ('csrPem' in row) {
    const request = { csrPem: row.csrPem, name: row.name, days: row.days };
    return prepareEnrollment(deps, csrEnrollment, { actor, factory, request }).then((p) => ({ ...p, via: 'csr' as const }));
  }
  const request = { certificatePem: row.certificatePem, name: row.name };
  return prepareEnrollment(deps, certificateEnrollment, { actor, factory, request }).then((p) => ({ ...p, via: 'certificate' as const }));
}

export async function enrollBatch(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  rows: readonly BulkEnrollmentRow[],
): Promise<{ ok: true; results: BulkRowResult[]; enrolled: Enrolled[] } | { ok: false; results: BulkRowResult[] }> {
  if (rows.length === 0 || rows.length > BULK_ENROLLMENT_MAX_ROWS) {
    throw invalidInput('rows_invalid', `a bulk enrollment takes 1 to ${BULK_ENROLLMENT_MAX_ROWS} rows`);
  }
  const prepared: Prepared[] = [];
  const results: BulkRowResult[] = [];
  const seen = new Map<string, number>();
  for (const [i, row] of rows.entries()) {
    try {
      const p = await prepareRow(deps, actor, factory, row);
      const twin = seen.get(p.claim.uuid);
      if (twin !== undefined) throw conflict('device_exists', `row ${twin + 1} enrolls the same UUID ${p.claim.uuid}`);
      seen.set(p.claim.uuid, i);
      prepared.push(p);
      results.push({ row: i + 1, uuid: p.claim.uuid, ok: true });
    } catch (e) {
      if (!isTollgateError(e) || e.kind === 'unavailable') throw e;
      results.push({ row: i + 1, uuid: null, ok: false, code: e.code, message: e.message });
    }
  }
  if (prepared.length !== rows.length) return { ok: false, results };
  const news = prepared.map((p) =>
    newDevice(deps, { actor: by(actor), ...p, name: p.claim.name, test: false, state: 'active', stateReason: null, bulk: true }),
  );
  const devices = await commitAll(
    deps,
    news.map((n) => n.event),
    (audits) => deps.store.insertDevices(news.map((n, i) => ({ device: n.device, audit: audits[i]! }))),
  );
  return {
    ok: true,
    results,
    enrolled: devices.map((device, i) => ({ device, certificatePem: prepared[i]!.certificate.pem, caCertificatePem: prepared[i]!.ca.certificatePem })),
  };
}
