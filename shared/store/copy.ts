/**
 * Moving an installation from one store to another (SQLite to PostgreSQL, as a fleet outgrows one
 * host): every record, read from one consistent snapshot of the source while it keeps running,
 * written into an empty target in one transaction, then counted on both sides.
 */
import { conflict, TollgateError } from '../errors.js';
import { num, type Param, type Queryable, type Row } from './engine.js';
import type { SqlStore } from './sql-store.js';
import type { AuditEntry } from './types.js';

/** Tables in the order foreign keys allow, each with the key rows are read in (bounded pages). */
const TABLES: readonly { table: string; key: string }[] = [
  { table: 'factories', key: 'id' },
  { table: 'factory_settings', key: 'factory_id' },
  { table: 'device_cas', key: 'id' },
  { table: 'devices', key: 'uuid' },
  { table: 'device_tombstones', key: 'uuid' },
  { table: 'device_next_keys', key: 'device_uuid' },
  { table: 'retired_certificates', key: 'fingerprint256' },
  { table: 'ca_registration_codes', key: 'code_hash' },
  { table: 'api_tokens', key: 'id' },
  { table: 'signing_keys', key: 'kid' },
  { table: 'operator_tokens', key: 'id' },
  { table: 'audit_log', key: 'id' },
];

/** What makes a target "in use": any of these holding a row. */
const MUST_BE_EMPTY = ['factories', 'devices', 'api_tokens', 'signing_keys', 'audit_log', 'stored_keys', 'operator_tokens'];

const PAGE = 2_000;

export interface CopyKeys {
  /** The key references the copied records name (CA and signing keys, and any the source kept sealed). */
  refs: readonly string[];
  /** The private key behind a reference, as the source keeps it (a file, or sealed in its database). */
  read(ref: string): Promise<string | null>;
  /** Seals a key for the target's row `ref`. */
  seal(ref: string, pem: string): { kekId: string; sealed: string };
}

export interface CopyReport {
  /** Rows per table, equal in source and target. */
  counts: Record<string, number>;
  keys: number;
}

async function countRows(q: Queryable, table: string): Promise<number> {
  return num((await q.get(`SELECT COUNT(*) AS n FROM ${table}`))?.n ?? 0);
}

async function refuseNonEmpty(target: SqlStore): Promise<void> {
  for (const table of MUST_BE_EMPTY) {
    const n = await countRows(target.database, table);
    if (n > 0) throw conflict('store_not_empty', `the target store is not empty (${table} has ${n} rows); copy only into a new, empty database`);
  }
}

/** Every row of `table` in key order, a page at a time. */
async function* pages(q: Queryable, table: string, key: string): AsyncGenerator<Row[]> {
  let after: unknown = null;
  for (;;) {
    const rows =
      after === null
        ? await q.all(`SELECT * FROM ${table} ORDER BY ${key} LIMIT ?`, [PAGE])
        : await q.all(`SELECT * FROM ${table} WHERE ${key} > ? ORDER BY ${key} LIMIT ?`, [after as Param, PAGE]);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]![key];
    if (rows.length < PAGE) return;
  }
}

/**
 * Copies `source` into `target` (both migrated to the same schema). Refuses a target that holds
 * data; on any failure the target is left as it was (one transaction). Keys are re-sealed for the
 * target. Resolves to the verified counts; throws copy_mismatch if a count differs.
 */
export async function copyStore(source: SqlStore, target: SqlStore, keys: CopyKeys, actor: Pick<AuditEntry, 'actor' | 'source'>): Promise<CopyReport> {
  await Promise.all([source.ready(), target.ready()]);
  const [from, to] = [await source.schemaVersion(), await target.schemaVersion()];
  if (from !== to) throw conflict('schema_mismatch', `the source store is at schema version ${from}, the target at ${to}; upgrade both to the same Tollgate first`);
  await refuseNonEmpty(target);
  const counts: Record<string, number> = {};
  let copiedKeys = 0;
  await source.database.snapshot(async (snap) => {
    await target.database.transaction(async (tx) => {
      for (const { table, key } of TABLES) {
        let n = 0;
        for await (const rows of pages(snap, table, key)) {
          const columns = Object.keys(rows[0]!);
          await tx.insertMany(table, columns, rows.map((r) => columns.map((c) => r[c] as Param)));
          n += rows.length;
        }
        counts[table] = n;
      }
      await target.database.continueIdentity(tx, 'audit_log', 'id');
      for (const r of await snap.all('SELECT topic, version FROM change_versions')) {
        await tx.run('UPDATE change_versions SET version = ? WHERE topic = ?', [num(r.version), r.topic as string]);
      }
      const cutoff = num((await snap.get('SELECT cutoff FROM audit_retention WHERE id = 1'))?.cutoff ?? 0);
      await tx.run('UPDATE audit_retention SET cutoff = ? WHERE id = 1 AND cutoff < ?', [cutoff, cutoff]);
      for (const ref of keys.refs) {
        const pem = await keys.read(ref);
        if (pem === null) throw new TollgateError('not_found', 'key_missing', `the source has no private key ${ref}; give the source's key directory (--from-pki-dir) or its key-encryption key`);
        const { kekId, sealed } = keys.seal(ref, pem);
        await tx.run('INSERT INTO stored_keys(ref, kek_id, sealed, created_at) VALUES (?, ?, ?, ?)', [ref, kekId, sealed, Date.now()]);
        copiedKeys++;
      }
    });
    // Counted after the commit, on both sides: the source from the same snapshot.
    for (const { table } of TABLES) {
      const [a, b] = [await countRows(snap, table), await countRows(target.database, table)];
      if (a !== b || counts[table] !== a) {
        throw new TollgateError('conflict', 'copy_mismatch', `${table}: the source has ${a} rows, the target ${b} after the copy`);
      }
    }
  });
  await target.appendAudit({ ...actor, action: 'store.copied', outcome: 'success', details: { counts, keys: copiedKeys } });
  return { counts, keys: copiedKeys };
}

/** Every private key reference the source's records name, plus any key it keeps sealed. */
export async function referencedKeys(source: SqlStore): Promise<string[]> {
  const q = source.database;
  const refs = new Set<string>();
  for (const r of await q.all('SELECT key_ref FROM device_cas WHERE key_ref IS NOT NULL')) refs.add(r.key_ref as string);
  for (const r of await q.all('SELECT key_ref FROM signing_keys')) refs.add(r.key_ref as string);
  for (const r of await q.all('SELECT ref FROM stored_keys')) refs.add(r.ref as string);
  return [...refs].sort();
}
