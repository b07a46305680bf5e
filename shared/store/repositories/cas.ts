import { num, str, strOrNull, type Queryable, type Row } from '../engine.js';
import type { CaState, DeviceCa } from '../types.js';

function toCa(r: Row): DeviceCa {
  return {
    id: str(r.id),
    factoryId: str(r.factory_id),
    kind: str(r.kind) as DeviceCa['kind'],
    certificatePem: str(r.certificate_pem),
    fingerprint256: str(r.fingerprint256),
    subjectCommonName: str(r.subject_cn),
    notAfter: num(r.not_after),
    state: str(r.state) as CaState,
    stateReason: strOrNull(r.state_reason),
    keyRef: strOrNull(r.key_ref),
    createdAt: num(r.created_at),
  };
}

export interface RegistrationCode {
  codeHash: string;
  factoryId: string;
  createdAt: number;
  expiresAt: number;
}

/** Device CAs, and the single-use codes that prove possession of an external CA's key. */
export const cas = {
  async insert(q: Queryable, ca: DeviceCa): Promise<void> {
    await q.run(
      `INSERT INTO device_cas(id, factory_id, kind, certificate_pem, fingerprint256, subject_cn, not_after,
                              state, state_reason, key_ref, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [ca.id, ca.factoryId, ca.kind, ca.certificatePem, ca.fingerprint256, ca.subjectCommonName, ca.notAfter, ca.state, ca.stateReason, ca.keyRef, ca.createdAt],
    );
  },

  async get(q: Queryable, id: string): Promise<DeviceCa | null> {
    const r = await q.get('SELECT * FROM device_cas WHERE id = ?', [id]);
    return r ? toCa(r) : null;
  },

  async list(q: Queryable, factoryId?: string): Promise<DeviceCa[]> {
    const rows =
      factoryId === undefined
        ? await q.all('SELECT * FROM device_cas ORDER BY created_at, id')
        : await q.all('SELECT * FROM device_cas WHERE factory_id = ? ORDER BY created_at, id', [factoryId]);
    return rows.map(toCa);
  },

  async setState(q: Queryable, id: string, state: CaState, reason: string | null): Promise<boolean> {
    return (await q.run('UPDATE device_cas SET state = ?, state_reason = ? WHERE id = ?', [state, reason, id])) === 1;
  },

  async addCode(q: Queryable, code: RegistrationCode): Promise<void> {
    // Expired codes are useless; clearing them here keeps the table from growing.
    await q.run('DELETE FROM ca_registration_codes WHERE expires_at <= ?', [code.createdAt]);
    await q.run('INSERT INTO ca_registration_codes(code_hash, factory_id, created_at, expires_at) VALUES (?, ?, ?, ?)', [
      code.codeHash,
      code.factoryId,
      code.createdAt,
      code.expiresAt,
    ]);
  },

  async consumeCode(q: Queryable, factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return (await q.run('DELETE FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?', [codeHash, factoryId, now])) === 1;
  },

  async hasCode(q: Queryable, factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return (await q.get('SELECT 1 AS one FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?', [codeHash, factoryId, now])) !== undefined;
  },
};
