import { num, str, type Queryable } from '../engine.js';

export interface SealedKey {
  ref: string;
  kekId: string;
  sealed: string;
  createdAt: number;
}

/** Private keys sealed with the key-encryption key: ciphertext only (see shared/keys/sealed.ts). */
export const storedKeys = {
  async insert(q: Queryable, k: SealedKey): Promise<void> {
    await q.run('INSERT INTO stored_keys(ref, kek_id, sealed, created_at) VALUES (?, ?, ?, ?)', [k.ref, k.kekId, k.sealed, k.createdAt]);
  },

  async get(q: Queryable, ref: string): Promise<SealedKey | null> {
    const r = await q.get('SELECT * FROM stored_keys WHERE ref = ?', [ref]);
    return r ? { ref: str(r.ref), kekId: str(r.kek_id), sealed: str(r.sealed), createdAt: num(r.created_at) } : null;
  },

  async delete(q: Queryable, ref: string): Promise<void> {
    await q.run('DELETE FROM stored_keys WHERE ref = ?', [ref]);
  },

  /** Keys sealed with any key-encryption key but `kekId`, a page at a time: what a rotation re-seals. */
  async sealedWithOther(q: Queryable, kekId: string, limit: number): Promise<SealedKey[]> {
    const rows = await q.all('SELECT * FROM stored_keys WHERE kek_id <> ? ORDER BY ref LIMIT ?', [kekId, limit]);
    return rows.map((r) => ({ ref: str(r.ref), kekId: str(r.kek_id), sealed: str(r.sealed), createdAt: num(r.created_at) }));
  },

  /** Replaces a key's seal if it still is `previous` (a concurrent rotation re-sealed it first otherwise). */
  async reseal(q: Queryable, ref: string, previous: string, kekId: string, sealed: string): Promise<boolean> {
    return (await q.run('UPDATE stored_keys SET kek_id = ?, sealed = ? WHERE ref = ? AND sealed = ?', [kekId, sealed, ref, previous])) === 1;
  },

  async count(q: Queryable): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const r of await q.all('SELECT kek_id, COUNT(*) AS n FROM stored_keys GROUP BY kek_id')) counts[str(r.kek_id)] = num(r.n);
    return counts;
  },
};
