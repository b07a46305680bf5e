import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { AuditRecord } from '../store/types.js';

/**
 * Audit retention can keep what it deletes: the records of each purged chunk are appended to a
 * file as NDJSON (one record per line, the shape `tollgate audit --format ndjson` writes, plus the
 * factory id) and flushed to disk before the deletion commits. Should the write fail, nothing is
 * deleted. A crash between the flush and the commit can repeat a chunk in the file: ids are unique,
 * so readers keep the first line of each id.
 */

/** An audit record as JSON carries it: times in RFC 3339, absent fields null. */
export function auditRecordJson(r: AuditRecord) {
  return {
    id: r.id,
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    factoryId: r.factoryId ?? null,
    target: r.target ?? null,
    reason: r.reason ?? null,
    source: r.source ?? null,
    details: r.details ?? null,
  };
}

export function auditArchiveLine(r: AuditRecord): string {
  return JSON.stringify(auditRecordJson(r));
}

/** Appends `records` to `file` (created 0600: the trail names devices, addresses and actors) and fsyncs it. */
export function appendAuditArchive(file: string, records: readonly AuditRecord[]): void {
  if (records.length === 0) return;
  const fd = openSync(file, 'a', 0o600);
  try {
    writeSync(fd, records.map((r) => `${auditArchiveLine(r)}\n`).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
