import { notFound } from '../../errors.js';
import type { AuditEntry, CaState, DeviceState, NewTokenRecord, RevokedDescendant, Store, TokenAuthView, TokenKind, TokenRecord } from '../types.js';
import { num, numOrNull, str, strOrNull, type Row, type SqliteCore } from './core.js';

/** Tokens of every kind (device, API, refresh), stored by the hash of their secret. */

function toToken(r: Row): TokenRecord {
  return {
    id: str(r.id),
    kind: str(r.kind) as TokenKind,
    factoryId: str(r.factory_id),
    deviceUuid: strOrNull(r.device_uuid),
    scopes: JSON.parse(str(r.scopes)) as string[],
    description: strOrNull(r.description),
    service: strOrNull(r.service),
    subject: str(r.subject),
    createdAt: num(r.created_at),
    expiresAt: numOrNull(r.expires_at),
    revokedAt: numOrNull(r.revoked_at),
    parentId: strOrNull(r.parent_id),
  };
}

/** The token row itself; written inside a group-commit batch. */
function insertTokenRow(core: SqliteCore, token: NewTokenRecord): void {
  core.stmt(
    `INSERT INTO api_tokens(id, secret_hash, kind, factory_id, device_uuid, scopes, description, service, subject,
                            created_at, expires_at, revoked_at, parent_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
  ).run(
    token.id,
    token.secretHash,
    token.kind,
    token.factoryId,
    token.deviceUuid,
    JSON.stringify(token.scopes),
    token.description,
    token.service,
    token.subject,
    token.createdAt,
    token.expiresAt,
    token.parentId ?? null,
  );
}

export function tokenRows(core: SqliteCore): Pick<Store, 'insertToken' | 'findTokenBySecretHash' | 'getToken' | 'listTokens' | 'revokeToken' | 'purgeExpiredTokens'> {
  return {
  async insertToken(token: NewTokenRecord, audit: AuditEntry | null): Promise<void> {
    return core.enqueue((at) => {
      insertTokenRow(core, token);
      if (audit) core.audit(audit, at);
    });
  },

  async findTokenBySecretHash(secretHash: string): Promise<TokenAuthView | null> {
    const r = core.read(
      () =>
        core.stmt(
          `SELECT t.*, f.name AS factory_name, d.state AS device_state, c.state AS ca_state
             FROM api_tokens t
             JOIN factories f ON f.id = t.factory_id
             LEFT JOIN devices d ON d.uuid = t.device_uuid
             LEFT JOIN device_cas c ON c.id = d.ca_id
            WHERE t.secret_hash = ?`,
        ).get(secretHash) as Row | undefined,
    );
    if (!r) return null;
    return {
      ...toToken(r),
      factoryName: str(r.factory_name),
      deviceState: strOrNull(r.device_state) as DeviceState | null,
      caState: strOrNull(r.ca_state) as CaState | null,
    };
  },

  async getToken(id: string): Promise<TokenRecord | null> {
    const r = core.read(() => core.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined);
    return r ? toToken(r) : null;
  },

  async listTokens(factoryId: string, options: { kind?: TokenKind } = {}): Promise<TokenRecord[]> {
    return core.read(() =>
      (
        core.stmt(
          'SELECT * FROM api_tokens WHERE factory_id = ? AND (? IS NULL OR kind = ?) ORDER BY created_at, id',
        ).all(factoryId, options.kind ?? null, options.kind ?? null) as Row[]
      ).map(toToken),
    );
  },

  async revokeToken(id: string, audit: AuditEntry): Promise<RevokedDescendant[]> {
    return core.write(() => {
      const now = Date.now();
      const info = core.stmt('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id);
      if (info.changes === 0) throw notFound('token_not_found', `no active token with id ${id}`);
      core.audit(audit);
      const descendants = (
        core.stmt(
          `WITH RECURSIVE lineage(id) AS (
             SELECT id FROM api_tokens WHERE parent_id = ?
             UNION SELECT t.id FROM api_tokens t JOIN lineage l ON t.parent_id = l.id
           )
           SELECT t.id, t.factory_id FROM api_tokens t JOIN lineage l ON t.id = l.id WHERE t.revoked_at IS NULL`,
        ).all(id) as Row[]
      ).map((r) => ({ id: str(r.id), factoryId: str(r.factory_id) }));
      for (const d of descendants) {
        core.stmt('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(now, d.id);
        core.audit({ ...audit, factoryId: d.factoryId, target: d.id, details: { ...audit.details, revokedWith: id } });
      }
      return descendants;
    });
  },

  async purgeExpiredTokens(now: number): Promise<number> {
    return core.write(
      () => core.stmt('DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?').run(now).changes,
    );
  }
  };
}
