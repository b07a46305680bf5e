import { num, str, strOrNull, type Queryable, type Row } from '../engine.js';
import type { AnnouncedNextKey, CaState, Device, DeviceAuthView, DeviceCertificateRotation, DeviceListOptions, DeviceState, DeviceTombstone, ListOptions } from '../types.js';

function toDevice(r: Row): Device {
  return {
    uuid: str(r.uuid),
    factoryId: str(r.factory_id),
    caId: str(r.ca_id),
    name: strOrNull(r.name),
    state: str(r.state) as DeviceState,
    stateReason: strOrNull(r.state_reason),
    isTest: num(r.is_test) === 1,
    certificatePem: str(r.certificate_pem),
    certificateFingerprint: str(r.certificate_fingerprint),
    publicKeyFingerprint: str(r.public_key_fingerprint),
    notAfter: num(r.not_after),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

const DEFAULT_PAGE = 100;
// A page of at most 1000, plus one row that tells the caller whether another page follows.
const MAX_PAGE = 1001;

const noDevices = (): Record<DeviceState, number> => ({ active: 0, pending: 0, disabled: 0, revoked: 0 });

export function pageSize(options?: ListOptions): number {
  const n = options?.limit ?? DEFAULT_PAGE;
  return Math.max(1, Math.min(MAX_PAGE, Math.trunc(n)));
}

/** Devices, their certificates, and the deny-list of certificates a rotation replaced. */
export const devices = {
  async insert(q: Queryable, d: Device): Promise<void> {
    await q.run(
      `INSERT INTO devices(uuid, factory_id, ca_id, name, state, state_reason, is_test, certificate_pem,
                           certificate_fingerprint, public_key_fingerprint, not_after, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        d.uuid,
        d.factoryId,
        d.caId,
        d.name,
        d.state,
        d.stateReason,
        d.isTest ? 1 : 0,
        d.certificatePem,
        d.certificateFingerprint,
        d.publicKeyFingerprint,
        d.notAfter,
        d.createdAt,
        d.updatedAt,
      ],
    );
  },

  async exists(q: Queryable, uuid: string): Promise<boolean> {
    return (await q.get('SELECT 1 AS one FROM devices WHERE uuid = ?', [uuid])) !== undefined;
  },

  async get(q: Queryable, uuid: string): Promise<Device | null> {
    const r = await q.get('SELECT * FROM devices WHERE uuid = ?', [uuid]);
    return r ? toDevice(r) : null;
  },

  /** The device with its factory's name and its CA's state: what every identification needs, in one read. */
  async authView(q: Queryable, uuid: string): Promise<DeviceAuthView | null> {
    const r = await q.get(
      `SELECT d.*, f.name AS factory_name, c.state AS ca_state
         FROM devices d JOIN factories f ON f.id = d.factory_id JOIN device_cas c ON c.id = d.ca_id
        WHERE d.uuid = ?`,
      [uuid],
    );
    if (!r) return null;
    return {
      ...toDevice(r),
      factoryName: str(r.factory_name),
      caState: str(r.ca_state) as CaState,
      previousCertificateFingerprint: strOrNull(r.previous_certificate_fingerprint),
    };
  },

  /** A page in UUID order after the cursor `options.after`, by state, test flag and a search text. */
  async list(q: Queryable, factoryId: string, options: DeviceListOptions): Promise<Device[]> {
    const search = options.search === undefined || options.search === '' ? null : options.search;
    // A UUID prefix or a part of the name; LIKE wildcards in the search text match themselves.
    const like = search === null ? null : search.replace(/[\\%_]/g, (c) => `\\${c}`);
    const test = options.test === undefined ? null : options.test ? 1 : 0;
    const rows = await q.all(
      `SELECT * FROM devices WHERE factory_id = ? AND uuid > ? AND (CAST(? AS TEXT) IS NULL OR state = ?)
          AND (CAST(? AS INTEGER) IS NULL OR is_test = ?)
          AND (CAST(? AS TEXT) IS NULL OR uuid LIKE CAST(? AS TEXT) || '%' ESCAPE '\\' OR name LIKE '%' || CAST(? AS TEXT) || '%' ESCAPE '\\')
        ORDER BY uuid LIMIT ?`,
      [factoryId, options.after ?? '', options.state ?? null, options.state ?? null, test, test, like, like, like, pageSize(options)],
    );
    return rows.map(toDevice);
  },

  /** How many devices of the factory each CA issued, by state. */
  async countByCa(q: Queryable, factoryId: string): Promise<Map<string, Record<DeviceState, number>>> {
    const counts = new Map<string, Record<DeviceState, number>>();
    for (const r of await q.all('SELECT ca_id, state, COUNT(*) AS n FROM devices WHERE factory_id = ? GROUP BY ca_id, state', [factoryId])) {
      const perCa = counts.get(str(r.ca_id)) ?? noDevices();
      const state = str(r.state);
      if (state in perCa) perCa[state as DeviceState] = num(r.n);
      counts.set(str(r.ca_id), perCa);
    }
    return counts;
  },

  /** Active devices whose certificate expires after `from` and by `until`, by factory id. */
  async countExpiring(q: Queryable, from: number, until: number): Promise<Record<string, number>> {
    const rows = await q.all(
      "SELECT factory_id, COUNT(*) AS n FROM devices WHERE state = 'active' AND not_after > ? AND not_after <= ? GROUP BY factory_id",
      [from, until],
    );
    return Object.fromEntries(rows.map((r) => [str(r.factory_id), num(r.n)]));
  },

  async setState(q: Queryable, uuid: string, state: DeviceState, reason: string | null, now: number): Promise<boolean> {
    return (await q.run('UPDATE devices SET state = ?, state_reason = ?, updated_at = ? WHERE uuid = ?', [state, reason, now, uuid])) === 1;
  },

  /**
   * Records what stays of a deleted device: its UUID is not free again. Deleting a UUID again
   * keeps the strongest facts (revoked once, test once).
   */
  async leaveTombstone(q: Queryable, d: Device, now: number): Promise<void> {
    await q.run(
      `INSERT INTO device_tombstones(uuid, factory_id, was_test, revoked, deleted_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(uuid) DO UPDATE SET was_test = CASE WHEN device_tombstones.was_test > excluded.was_test THEN device_tombstones.was_test ELSE excluded.was_test END,
                                       revoked = CASE WHEN device_tombstones.revoked > excluded.revoked THEN device_tombstones.revoked ELSE excluded.revoked END,
                                       deleted_at = excluded.deleted_at`,
      [d.uuid, d.factoryId, d.isTest ? 1 : 0, d.state === 'revoked' ? 1 : 0, now],
    );
  },

  async tombstone(q: Queryable, uuid: string): Promise<DeviceTombstone | null> {
    const r = await q.get('SELECT t.*, f.name AS factory_name FROM device_tombstones t JOIN factories f ON f.id = t.factory_id WHERE t.uuid = ?', [uuid]);
    if (!r) return null;
    return {
      uuid: str(r.uuid),
      factoryId: str(r.factory_id),
      factoryName: str(r.factory_name),
      wasTest: num(r.was_test) === 1,
      revoked: num(r.revoked) === 1,
      deletedAt: num(r.deleted_at),
    };
  },

  async delete(q: Queryable, uuid: string): Promise<boolean> {
    return (await q.run('DELETE FROM devices WHERE uuid = ?', [uuid])) === 1;
  },

  async rotate(q: Queryable, uuid: string, rotation: DeviceCertificateRotation, now: number): Promise<boolean> {
    const changed = await q.run(
      `UPDATE devices SET certificate_pem = ?, certificate_fingerprint = ?, public_key_fingerprint = ?, not_after = ?,
                          previous_certificate_fingerprint = ?, updated_at = ?
        WHERE uuid = ?`,
      [rotation.certificatePem, rotation.certificateFingerprint, rotation.publicKeyFingerprint, rotation.notAfter, rotation.previousCertificateFingerprint, now, uuid],
    );
    return changed === 1;
  },

  /** Clears the previous certificate if it still is `fingerprint`; false when it no longer was. */
  async clearPrevious(q: Queryable, uuid: string, fingerprint: string): Promise<boolean> {
    const changed = await q.run('UPDATE devices SET previous_certificate_fingerprint = NULL WHERE uuid = ? AND previous_certificate_fingerprint = ?', [uuid, fingerprint]);
    return changed === 1;
  },

  async retireCertificate(q: Queryable, uuid: string, fingerprint: string, now: number): Promise<void> {
    await q.run('INSERT INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [fingerprint, uuid, now]);
  },

  async isRetired(q: Queryable, fingerprint: string): Promise<boolean> {
    return (await q.get('SELECT 1 AS one FROM retired_certificates WHERE fingerprint256 = ?', [fingerprint])) !== undefined;
  },

  /** Records (or replaces) the public key a device announced for its next certificate. */
  async putNextKey(q: Queryable, key: AnnouncedNextKey): Promise<void> {
    await q.run(
      `INSERT INTO device_next_keys(device_uuid, public_key_fingerprint, announced_at) VALUES (?, ?, ?)
       ON CONFLICT(device_uuid) DO UPDATE SET public_key_fingerprint = excluded.public_key_fingerprint, announced_at = excluded.announced_at`,
      [key.deviceUuid, key.publicKeyFingerprint, key.announcedAt],
    );
  },

  async nextKey(q: Queryable, uuid: string): Promise<AnnouncedNextKey | null> {
    const r = await q.get('SELECT * FROM device_next_keys WHERE device_uuid = ?', [uuid]);
    return r ? { deviceUuid: str(r.device_uuid), publicKeyFingerprint: str(r.public_key_fingerprint), announcedAt: num(r.announced_at) } : null;
  },

  async clearNextKey(q: Queryable, uuid: string): Promise<boolean> {
    return (await q.run('DELETE FROM device_next_keys WHERE device_uuid = ?', [uuid])) === 1;
  },

  async countByState(q: Queryable): Promise<Record<DeviceState, number>> {
    const counts = noDevices();
    for (const r of await q.all('SELECT state, COUNT(*) AS n FROM devices GROUP BY state')) {
      const state = str(r.state);
      if (state in counts) counts[state as DeviceState] = num(r.n);
    }
    return counts;
  },
};
