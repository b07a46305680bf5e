import { conflict, notFound } from '../../errors.js';
import type { AuditEntry, SigningKeyRecord, Store } from '../types.js';
import { isUniqueViolation, num, numOrNull, str, type Row, type SqliteCore } from './core.js';

/** Token-signing keys: trusted, active, retired. */

function toSigningKey(r: Row): SigningKeyRecord {
  return {
    kid: str(r.kid),
    alg: str(r.alg),
    certificatePem: str(r.certificate_pem),
    keyRef: str(r.key_ref),
    status: str(r.status) as SigningKeyRecord['status'],
    createdAt: num(r.created_at),
    activatedAt: numOrNull(r.activated_at),
  };
}

export function signingKeyRows(core: SqliteCore): Pick<Store, 'addSigningKey' | 'listSigningKeys' | 'activateSigningKey' | 'retireSigningKey'> {
  return {
  async addSigningKey(key: SigningKeyRecord, audit: AuditEntry): Promise<void> {
    core.write(() => {
      try {
        core.stmt(
          `INSERT INTO signing_keys(kid, alg, certificate_pem, key_ref, status, created_at, activated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(key.kid, key.alg, key.certificatePem, key.keyRef, key.status, key.createdAt, key.activatedAt);
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('signing_key_exists', `signing key ${key.kid} already exists`);
        throw e;
      }
      core.bump('signing_keys');
      core.audit(audit);
    });
  },

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return core.read(() =>
      (core.stmt('SELECT * FROM signing_keys ORDER BY created_at, kid').all() as Row[]).map(toSigningKey),
    );
  },

  async activateSigningKey(kid: string, audit: AuditEntry): Promise<void> {
    core.write(() => {
      const r = core.stmt('SELECT status FROM signing_keys WHERE kid = ?').get(kid) as Row | undefined;
      if (!r) throw notFound('signing_key_not_found', `no signing key ${kid}`);
      if (r.status === 'retired') throw conflict('signing_key_retired', `signing key ${kid} is retired`);
      core.stmt("UPDATE signing_keys SET status = 'trusted' WHERE status = 'active'").run();
      core.stmt("UPDATE signing_keys SET status = 'active', activated_at = ? WHERE kid = ?").run(Date.now(), kid);
      core.bump('signing_keys');
      core.audit(audit);
    });
  },

  async retireSigningKey(kid: string, audit: AuditEntry): Promise<void> {
    core.write(() => {
      const r = core.stmt('SELECT status FROM signing_keys WHERE kid = ?').get(kid) as Row | undefined;
      if (!r) throw notFound('signing_key_not_found', `no signing key ${kid}`);
      if (r.status === 'active') throw conflict('signing_key_active', `activate another key before retiring ${kid}`);
      core.stmt("UPDATE signing_keys SET status = 'retired' WHERE kid = ?").run(kid);
      core.bump('signing_keys');
      core.audit(audit);
    });
  }
  };
}
