import { num, numOrNull, str, strOrNull, type Param, type Queryable, type Row, type RowSet } from '../engine.js';
import type { CaState, DeviceState, NewTokenRecord, OperatorToken, RevokedDescendant, TokenAuthView, TokenKind, TokenRecord } from '../types.js';

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

function toOperatorToken(r: Row): OperatorToken {
  return {
    id: str(r.id),
    description: strOrNull(r.description),
    createdAt: num(r.created_at),
    expiresAt: numOrNull(r.expires_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

const TOKEN_COLUMNS = [
  'id',
  'secret_hash',
  'kind',
  'factory_id',
  'device_uuid',
  'scopes',
  'description',
  'service',
  'subject',
  'created_at',
  'expires_at',
  'revoked_at',
  'parent_id',
] as const;

function tokenRow(t: NewTokenRecord): Param[] {
  return [t.id, t.secretHash, t.kind, t.factoryId, t.deviceUuid, JSON.stringify(t.scopes), t.description, t.service, t.subject, t.createdAt, t.expiresAt, null, t.parentId ?? null];
}

/** Bearer credentials, stored by the SHA-256 of their secret: device, API, refresh and operator tokens. */
export const tokens = {
  /** New token rows, for the group commit. */
  rowSet(rows: readonly NewTokenRecord[]): RowSet {
    return { table: 'api_tokens', columns: TOKEN_COLUMNS, rows: rows.map(tokenRow) };
  },

  /** The token with the state of everything it depends on, in one read: the realm's hot path. */
  async findBySecretHash(q: Queryable, secretHash: string): Promise<TokenAuthView | null> {
    const r = await q.get(
      `SELECT t.*, f.name AS factory_name, d.state AS device_state, c.state AS ca_state
         FROM api_tokens t
         JOIN factories f ON f.id = t.factory_id
         LEFT JOIN devices d ON d.uuid = t.device_uuid
         LEFT JOIN device_cas c ON c.id = d.ca_id
        WHERE t.secret_hash = ?`,
      [secretHash],
    );
    if (!r) return null;
    return {
      ...toToken(r),
      factoryName: str(r.factory_name),
      deviceState: strOrNull(r.device_state) as DeviceState | null,
      caState: strOrNull(r.ca_state) as CaState | null,
    };
  },

  async get(q: Queryable, id: string): Promise<TokenRecord | null> {
    const r = await q.get('SELECT * FROM api_tokens WHERE id = ?', [id]);
    return r ? toToken(r) : null;
  },

  async list(q: Queryable, factoryId: string, kind?: TokenKind): Promise<TokenRecord[]> {
    const rows = await q.all('SELECT * FROM api_tokens WHERE factory_id = ? AND (CAST(? AS TEXT) IS NULL OR kind = ?) ORDER BY created_at, id', [
      factoryId,
      kind ?? null,
      kind ?? null,
    ]);
    return rows.map(toToken);
  },

  async revoke(q: Queryable, id: string, now: number): Promise<boolean> {
    return (await q.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id])) === 1;
  },

  /** The tokens created from `id`, transitively (parent_id), that are not revoked yet. */
  async liveDescendants(q: Queryable, id: string): Promise<RevokedDescendant[]> {
    const rows = await q.all(
      `WITH RECURSIVE lineage(id) AS (
         SELECT id FROM api_tokens WHERE parent_id = ?
         UNION SELECT t.id FROM api_tokens t JOIN lineage l ON t.parent_id = l.id
       )
       SELECT t.id, t.factory_id FROM api_tokens t JOIN lineage l ON t.id = l.id WHERE t.revoked_at IS NULL ORDER BY t.id`,
      [id],
    );
    return rows.map((r) => ({ id: str(r.id), factoryId: str(r.factory_id) }));
  },

  /** Revokes (keeps until expiry, so the realm can tell why) every live token of the device. */
  async revokeOfDevice(q: Queryable, uuid: string, now: number): Promise<number> {
    return q.run('UPDATE api_tokens SET revoked_at = ? WHERE device_uuid = ? AND revoked_at IS NULL', [now, uuid]);
  },

  async revokeOfDevicesUnderCa(q: Queryable, caId: string, now: number): Promise<number> {
    return q.run('UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND device_uuid IN (SELECT uuid FROM devices WHERE ca_id = ?)', [now, caId]);
  },

  async purgeExpired(q: Queryable, now: number): Promise<number> {
    return q.run('DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?', [now]);
  },

  async insertOperator(q: Queryable, t: OperatorToken & { secretHash: string }): Promise<void> {
    await q.run('INSERT INTO operator_tokens(id, secret_hash, description, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)', [
      t.id,
      t.secretHash,
      t.description,
      t.createdAt,
      t.expiresAt,
    ]);
  },

  async findOperatorBySecretHash(q: Queryable, secretHash: string): Promise<OperatorToken | null> {
    const r = await q.get('SELECT * FROM operator_tokens WHERE secret_hash = ?', [secretHash]);
    return r ? toOperatorToken(r) : null;
  },

  async listOperator(q: Queryable): Promise<OperatorToken[]> {
    return (await q.all('SELECT * FROM operator_tokens ORDER BY created_at, id')).map(toOperatorToken);
  },

  async revokeOperator(q: Queryable, id: string, now: number): Promise<boolean> {
    return (await q.run('UPDATE operator_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id])) === 1;
  },
};
