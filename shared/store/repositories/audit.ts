import { num, str, strOrNull, type Param, type Queryable, type Row, type RowSet } from '../engine.js';
import type { AuditEntry, AuditFilter, AuditRecord } from '../types.js';
import { pageSize } from './devices.js';

function toAudit(r: Row): AuditRecord {
  return {
    id: num(r.id),
    at: num(r.at),
    actor: str(r.actor),
    action: str(r.action),
    outcome: str(r.outcome) as AuditRecord['outcome'],
    factoryId: strOrNull(r.factory_id),
    target: strOrNull(r.target),
    reason: strOrNull(r.reason),
    source: strOrNull(r.source),
    details: r.details ? (JSON.parse(str(r.details)) as Record<string, unknown>) : null,
  };
}

const COLUMNS = ['at', 'actor', 'action', 'outcome', 'factory_id', 'target', 'reason', 'source', 'details'] as const;

function auditRow(entry: AuditEntry, at: number): Param[] {
  return [
    at,
    entry.actor,
    entry.action,
    entry.outcome,
    entry.factoryId ?? null,
    entry.target ?? null,
    entry.reason ?? null,
    entry.source ?? null,
    entry.details ? JSON.stringify(entry.details) : null,
  ];
}

/** The append-only audit trail, and its forward-only retention cutoff. */
export const audit = {
  async append(q: Queryable, entry: AuditEntry, at: number): Promise<void> {
    await q.run(`INSERT INTO audit_log(${COLUMNS.join(', ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, auditRow(entry, at));
  },

  /** New audit rows, for the group commit. */
  rowSet(entries: readonly { entry: AuditEntry; at: number }[]): RowSet {
    return { table: 'audit_log', columns: COLUMNS, rows: entries.map((e) => auditRow(e.entry, e.at)) };
  },

  /** A page in id order (oldest or newest first) after the cursor `filter.after` (an id), filtered. */
  async list(q: Queryable, filter: AuditFilter): Promise<AuditRecord[]> {
    const desc = filter.order === 'desc';
    const cursor = filter.after === undefined ? null : Number.parseInt(filter.after, 10);
    const after = cursor === null || !Number.isFinite(cursor) ? (desc ? Number.MAX_SAFE_INTEGER : 0) : cursor;
    const both = (x: string | number | undefined): Param[] => [x ?? null, x ?? null];
    const rows = await q.all(
      `SELECT * FROM audit_log
        WHERE ${desc ? 'id < ?' : 'id > ?'} AND (CAST(? AS TEXT) IS NULL OR factory_id = ?) AND (CAST(? AS TEXT) IS NULL OR target = ?)
          AND (CAST(? AS TEXT) IS NULL OR action = ?) AND (CAST(? AS TEXT) IS NULL OR actor = ?) AND (CAST(? AS TEXT) IS NULL OR outcome = ?)
          AND (CAST(? AS BIGINT) IS NULL OR at >= ?) AND (CAST(? AS BIGINT) IS NULL OR at < ?)
        ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`,
      [
        after,
        ...[filter.factoryId, filter.target, filter.action, filter.actor, filter.outcome, filter.since, filter.until].flatMap(both),
        pageSize(filter),
      ],
    );
    return rows.map(toAudit);
  },

  async cutoff(q: Queryable): Promise<number> {
    return num((await q.get('SELECT cutoff FROM audit_retention WHERE id = 1'))?.cutoff ?? 0);
  },

  /** Moves the cutoff forward to `cutoff` (never back); resolves to the cutoff in force. */
  async advanceCutoff(q: Queryable, cutoff: number): Promise<number> {
    await q.run('UPDATE audit_retention SET cutoff = ? WHERE id = 1 AND cutoff < ?', [cutoff, cutoff]);
    return audit.cutoff(q);
  },

  /**
   * Deletes at most `limit` of the oldest records written before `cutoff`. Walks the oldest ids
   * (no index on `at` to pay for on every insert) and stops at the first record that must stay:
   * ids follow time, so what is older lies before it. `more` when the window was all deletable.
   */
  async deleteOldest(q: Queryable, cutoff: number, limit: number, archive?: (records: AuditRecord[]) => void): Promise<{ deleted: number; more: boolean }> {
    const window = await q.all('SELECT id, at FROM audit_log ORDER BY id LIMIT ?', [limit]);
    let last: number | null = null;
    let prefix = 0;
    for (const r of window) {
      if (num(r.at) >= cutoff) break;
      last = num(r.id);
      prefix++;
    }
    if (last === null) return { deleted: 0, more: false };
    // Handed over before the delete, in its transaction: an archive that fails keeps every record.
    if (archive) archive((await q.all('SELECT * FROM audit_log WHERE id <= ? AND at < ? ORDER BY id', [last, cutoff])).map(toAudit));
    const deleted = await q.run('DELETE FROM audit_log WHERE id <= ? AND at < ?', [last, cutoff]);
    return { deleted, more: prefix === limit };
  },
};
