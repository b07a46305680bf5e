import type { Response } from 'express';
import { z } from 'zod';
import { auditSchema, pageSchema, type AuditJson } from '../present.js';
import { auditExportQuery, auditQuery } from '../requests.js';
import { factoryParam, READ, route, type ApiOptions, type Route } from './route.js';

/** The CSV export's columns, in order. */
const CSV_COLUMNS = ['id', 'at', 'actor', 'action', 'outcome', 'target', 'reason', 'source', 'details'] as const;

/** One CSV field (RFC 4180); a leading = + - @ is defused so spreadsheets do not run it as a formula. */
function csvField(value: unknown): string {
  let s = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

async function sendExport(res: Response, records: AsyncIterable<AuditJson>, format: 'ndjson' | 'csv', factory: string): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  res.status(200);
  res.set('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
  res.set('Content-Disposition', `attachment; filename="tollgate-audit-${factory}-${stamp}.${format}"`);
  if (format === 'csv') res.write(`${CSV_COLUMNS.join(',')}\r\n`);
  for await (const r of records) {
    const line = format === 'csv' ? `${CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n` : `${JSON.stringify(r)}\n`;
    if (!res.write(line)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

/** A factory's audit trail: pages and exports. */
export function auditRoutes({ service }: ApiOptions): Route[] {
  return [
    route({
      method: 'get',
      path: '/factories/:factory/audit',
      operationId: 'listAudit',
      summary: "the factory's audit trail, filtered by target, actor, action, outcome and time",
      tag: 'audit',
      auth: 'required',
      scopes: READ,
      query: auditQuery,
      answers: { 200: { description: 'a page of audit records', schema: pageSchema(auditSchema, 'AuditPage') } },
      async handle({ req, res, principal, query }) {
        res.json(await service.audit(principal, factoryParam(req), query));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/audit/export',
      operationId: 'exportAudit',
      summary: 'every record the filters select (up to 100,000), as NDJSON or CSV, for a download',
      tag: 'audit',
      auth: 'required',
      scopes: READ,
      query: auditExportQuery,
      answers: {
        200: {
          description: 'one record per line',
          content: { 'application/x-ndjson': z.string(), 'text/csv': z.string() },
        },
      },
      async handle({ req, res, principal, query }) {
        const { format, ...filters } = query;
        const records = service.auditExport(principal, factoryParam(req), filters);
        // The first record (or the refusal) is awaited before any header is sent.
        const first = await records.next();
        async function* all(): AsyncGenerator<AuditJson> {
          if (!first.done) yield first.value;
          yield* records;
        }
        await sendExport(res, all(), format ?? 'ndjson', String(factoryParam(req)));
      },
    }),
  ];
}
