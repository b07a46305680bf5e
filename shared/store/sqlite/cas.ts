import { conflict, notFound } from '../../errors.js';
import type { AuditEntry, CaState, DeviceCa, Store } from '../types.js';
import { isUniqueViolation, num, str, strOrNull, type Row, type SqliteCore } from './core.js';

/** Device CAs and the single-use codes that prove possession of an external CA's key. */

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

export function caRows(
  core: SqliteCore,
): Pick<Store, 'addDeviceCa' | 'getDeviceCa' | 'listDeviceCas' | 'setDeviceCaState' | 'addCaRegistrationCode' | 'consumeCaRegistrationCode' | 'hasCaRegistrationCode'> {
  return {
  async addDeviceCa(ca: DeviceCa, audit: AuditEntry): Promise<DeviceCa> {
    return core.write(() => {
      try {
        core.stmt(
          `INSERT INTO device_cas(id, factory_id, kind, certificate_pem, fingerprint256, subject_cn, not_after,
                                  state, state_reason, key_ref, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          ca.id,
          ca.factoryId,
          ca.kind,
          ca.certificatePem,
          ca.fingerprint256,
          ca.subjectCommonName,
          ca.notAfter,
          ca.state,
          ca.stateReason,
          ca.keyRef,
          ca.createdAt,
        );
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('ca_exists', 'this CA certificate is already registered');
        throw e;
      }
      core.bump('device_cas');
      core.audit(audit);
      return ca;
    });
  },

  async getDeviceCa(id: string): Promise<DeviceCa | null> {
    const r = core.read(() => core.stmt('SELECT * FROM device_cas WHERE id = ?').get(id) as Row | undefined);
    return r ? toCa(r) : null;
  },

  async listDeviceCas(filter: { factoryId?: string } = {}): Promise<DeviceCa[]> {
    return core.read(() => {
      const rows =
        filter.factoryId === undefined
          ? (core.stmt('SELECT * FROM device_cas ORDER BY created_at, id').all() as Row[])
          : (core.stmt('SELECT * FROM device_cas WHERE factory_id = ? ORDER BY created_at, id').all(
              filter.factoryId,
            ) as Row[]);
      return rows.map(toCa);
    });
  },

  async setDeviceCaState(id: string, state: CaState, reason: string | null, audit: AuditEntry): Promise<DeviceCa> {
    return core.write(() => {
      const r = core.stmt('SELECT * FROM device_cas WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw notFound('ca_not_found', `no device CA with id ${id}`);
      core.stmt('UPDATE device_cas SET state = ?, state_reason = ? WHERE id = ?').run(state, reason, id);
      if (state === 'revoked') {
        // A revoked CA cuts off every device under it at once: their tokens die with it (revoked,
        // and kept until they expire so that the realm can tell why).
        core.stmt('UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND device_uuid IN (SELECT uuid FROM devices WHERE ca_id = ?)').run(
          Date.now(),
          id,
        );
      }
      core.bump('device_cas');
      core.audit(audit);
      return toCa({ ...r, state, state_reason: reason });
    });
  },

  async addCaRegistrationCode(code: { codeHash: string; factoryId: string; createdAt: number; expiresAt: number }, audit: AuditEntry): Promise<void> {
    core.write(() => {
      // Expired codes are useless; clearing them here keeps the table from growing.
      core.stmt('DELETE FROM ca_registration_codes WHERE expires_at <= ?').run(code.createdAt);
      core.stmt('INSERT INTO ca_registration_codes(code_hash, factory_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(
        code.codeHash,
        code.factoryId,
        code.createdAt,
        code.expiresAt,
      );
      core.audit(audit);
    });
  },

  async consumeCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return core.write(
      () =>
        core.stmt('DELETE FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?').run(codeHash, factoryId, now)
          .changes === 1,
    );
  },

  async hasCaRegistrationCode(factoryId: string, codeHash: string, now: number): Promise<boolean> {
    return core.read(
      () => core.stmt('SELECT 1 FROM ca_registration_codes WHERE code_hash = ? AND factory_id = ? AND expires_at > ?').get(codeHash, factoryId, now) !== undefined,
    );
  }
  };
}
