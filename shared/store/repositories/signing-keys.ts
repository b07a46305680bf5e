import { num, numOrNull, str, type Queryable, type Row } from '../engine.js';
import type { SigningKeyRecord, SigningKeyStatus } from '../types.js';

function toSigningKey(r: Row): SigningKeyRecord {
  return {
    kid: str(r.kid),
    alg: str(r.alg),
    certificatePem: str(r.certificate_pem),
    keyRef: str(r.key_ref),
    status: str(r.status) as SigningKeyStatus,
    createdAt: num(r.created_at),
    activatedAt: numOrNull(r.activated_at),
  };
}

/** Token-signing keys: certificates and references to their private keys, never the keys. */
export const signingKeys = {
  async insert(q: Queryable, key: SigningKeyRecord): Promise<void> {
    await q.run(
      `INSERT INTO signing_keys(kid, alg, certificate_pem, key_ref, status, created_at, activated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [key.kid, key.alg, key.certificatePem, key.keyRef, key.status, key.createdAt, key.activatedAt],
    );
  },

  async list(q: Queryable): Promise<SigningKeyRecord[]> {
    return (await q.all('SELECT * FROM signing_keys ORDER BY created_at, kid')).map(toSigningKey);
  },

  /** Sets `kid`'s status if it still is `from`; false when it no longer was (or never existed). */
  async setStatus(q: Queryable, kid: string, from: SigningKeyStatus, to: SigningKeyStatus, activatedAt: number | null): Promise<boolean> {
    const changed =
      activatedAt === null
        ? await q.run('UPDATE signing_keys SET status = ? WHERE kid = ? AND status = ?', [to, kid, from])
        : await q.run('UPDATE signing_keys SET status = ?, activated_at = ? WHERE kid = ? AND status = ?', [to, activatedAt, kid, from]);
    return changed === 1;
  },
};
