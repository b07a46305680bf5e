import type { AuditEntry, AuditFilter, AuditRecord, Store } from '../types.js';
import { num, pageSize, str, strOrNull, type Row, type SqliteCore } from './core.js';

/** The append-only audit trail and its retention. */

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

export function auditRows(core: SqliteCore): Pick<Store, 'appendAudit' | 'listAudit' | 'purgeAuditLog' | 'auditRetentionCutoff'> {
  return {
  async appendAudit(entry: AuditEntry): Promise<void> {
    return core.enqueue((at) => core.audit(entry, at));
  },

  async listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const limit = pageSize(filter);
    const desc = filter.order === 'desc';
    const cursor = filter.after === undefined ? null : Number.parseInt(filter.after, 10);
    const after = cursor === null || !Number.isFinite(cursor) ? (desc ? Number.MAX_SAFE_INTEGER : 0) : cursor;
    const v = (x: string | number | undefined) => x ?? null;
    return core.read(() =>
      (
        core.stmt(
          `SELECT * FROM audit_log
            WHERE ${desc ? 'id < ?' : 'id > ?'} AND (? IS NULL OR factory_id = ?) AND (? IS NULL OR target = ?) AND (? IS NULL OR action = ?)
              AND (? IS NULL OR actor = ?) AND (? IS NULL OR outcome = ?) AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?)
            ORDER BY id ${desc ? 'DESC' : 'ASC'} LIMIT ?`,
        ).all(
          after,
          ...[filter.factoryId, filter.target, filter.action, filter.actor, filter.outcome, filter.since, filter.until].flatMap((x) => [v(x), v(x)]),
          limit,
        ) as Row[]
      ).map(toAudit),
    );
  },

  async purgeAuditLog(
    cutoff: number,
    maxRows: number,
    audit: AuditEntry,
    archive?: (records: AuditRecord[]) => void,
  ): Promise<{ deleted: number; cutoff: number; more: boolean }> {
    const limit = Math.max(1, Math.trunc(maxRows));
    return core.write(() => {
      core.stmt('UPDATE audit_retention SET cutoff = ? WHERE id = 1 AND cutoff < ?').run(Math.trunc(cutoff), Math.trunc(cutoff));
      const inForce = num((core.stmt('SELECT cutoff FROM audit_retention WHERE id = 1').get() as Row | undefined)?.cutoff ?? 0);
      // Walks the oldest ids (the rowid order, no index on `at` to pay for on every insert) and
      // stops at the first record that must stay: ids follow time, so what is older lies before it.
      const window = core.stmt('SELECT id, at FROM audit_log ORDER BY id LIMIT ?').raw(true).all(limit) as [number, number][];
      let last: number | null = null;
      let prefix = 0;
      for (const [id, at] of window) {
        if (at >= inForce) break;
        last = id;
        prefix++;
      }
      if (last === null) return { deleted: 0, cutoff: inForce, more: false };
      if (archive) archive((core.stmt('SELECT * FROM audit_log WHERE id <= ? AND at < ? ORDER BY id').all(last, inForce) as Row[]).map(toAudit));
      const deleted = core.stmt('DELETE FROM audit_log WHERE id <= ? AND at < ?').run(last, inForce).changes;
      core.audit({ ...audit, details: { ...audit.details, deleted, cutoff: new Date(inForce).toISOString() } });
      return { deleted, cutoff: inForce, more: prefix === limit };
    });
  },

  async auditRetentionCutoff(): Promise<number> {
    return core.read(() => num((core.stmt('SELECT cutoff FROM audit_retention WHERE id = 1').get() as Row | undefined)?.cutoff ?? 0));
  }
  };
}
