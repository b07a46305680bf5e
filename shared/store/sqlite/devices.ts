import { conflict, notFound } from '../../errors.js';
import type { AnnouncedNextKey, AuditEntry, CaState, Device, DeviceAuthView, DeviceCertificateRotation, DeviceListOptions, DeviceState, DeviceTombstone, Store } from '../types.js';
import { isUniqueViolation, num, pageSize, str, strOrNull, type Row, type SqliteCore } from './core.js';

/** Devices, their certificates (current, previous, retired) and their states. */

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

/** The device row itself, refusing a taken UUID or certificate by name. */
function insertDeviceRow(core: SqliteCore, device: Device): void {
  try {
    core.stmt(
      `INSERT INTO devices(uuid, factory_id, ca_id, name, state, state_reason, is_test, certificate_pem,
                           certificate_fingerprint, public_key_fingerprint, not_after, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      device.uuid,
      device.factoryId,
      device.caId,
      device.name,
      device.state,
      device.stateReason,
      device.isTest ? 1 : 0,
      device.certificatePem,
      device.certificateFingerprint,
      device.publicKeyFingerprint,
      device.notAfter,
      device.createdAt,
      device.updatedAt,
    );
  } catch (e) {
    if (isUniqueViolation(e)) {
      const existing = core.stmt('SELECT 1 FROM devices WHERE uuid = ?').get(device.uuid);
      if (existing) throw conflict('device_exists', `a device with UUID ${device.uuid} is already enrolled`);
      throw conflict('certificate_in_use', 'this certificate is already enrolled for another device');
    }
    throw e;
  }
}

export function deviceRows(
  core: SqliteCore,
): Pick<
  Store,
  | 'insertDevice'
  | 'insertDevices'
  | 'getDevice'
  | 'listDevices'
  | 'countDevicesByCa'
  | 'setDeviceState'
  | 'deleteDevice'
  | 'getDeviceTombstone'
  | 'rotateDeviceCertificate'
  | 'retirePreviousCertificate'
  | 'isCertificateRetired'
  | 'putNextKey'
  | 'getNextKey'
  | 'clearNextKey'
  | 'countDevicesExpiring'
  | 'countDevicesByState'
> {
  return {
  async insertDevice(device: Device, audit: AuditEntry): Promise<Device> {
    return core.write(() => {
      insertDeviceRow(core, device);
      core.audit(audit);
      return device;
    });
  },

  async insertDevices(entries: { device: Device; audit: AuditEntry }[]): Promise<Device[]> {
    // One transaction: a refusal of any row (a UUID enrolled meanwhile) rolls back every row.
    return core.write(() =>
      entries.map(({ device, audit }) => {
        insertDeviceRow(core, device);
        core.audit(audit);
        return device;
      }),
    );
  },

  async getDevice(uuid: string): Promise<DeviceAuthView | null> {
    const r = core.read(
      () =>
        core.stmt(
          `SELECT d.*, f.name AS factory_name, c.state AS ca_state
             FROM devices d JOIN factories f ON f.id = d.factory_id JOIN device_cas c ON c.id = d.ca_id
            WHERE d.uuid = ?`,
        ).get(uuid) as Row | undefined,
    );
    if (!r) return null;
    return {
      ...toDevice(r),
      factoryName: str(r.factory_name),
      caState: str(r.ca_state) as CaState,
      previousCertificateFingerprint: strOrNull(r.previous_certificate_fingerprint),
    };
  },

  async listDevices(factoryId: string, options: DeviceListOptions = {}): Promise<Device[]> {
    const limit = pageSize(options);
    const search = options.search === undefined || options.search === '' ? null : options.search;
    // A UUID prefix or a part of the name; LIKE wildcards in the search text match themselves.
    const like = search === null ? null : search.replace(/[\\%_]/g, (c) => `\\${c}`);
    const test = options.test === undefined ? null : options.test ? 1 : 0;
    return core.read(() => {
      const rows = core.stmt(
        `SELECT * FROM devices WHERE factory_id = ? AND uuid > ? AND (? IS NULL OR state = ?) AND (? IS NULL OR is_test = ?)
            AND (? IS NULL OR uuid LIKE ? || '%' ESCAPE '\\' OR name LIKE '%' || ? || '%' ESCAPE '\\')
          ORDER BY uuid LIMIT ?`,
      ).all(factoryId, options.after ?? '', options.state ?? null, options.state ?? null, test, test, like, like, like, limit) as Row[];
      return rows.map(toDevice);
    });
  },

  async countDevicesByCa(factoryId: string): Promise<Map<string, Record<DeviceState, number>>> {
    const rows = core.read(
      () => core.stmt('SELECT ca_id, state, COUNT(*) AS n FROM devices WHERE factory_id = ? GROUP BY ca_id, state').all(factoryId) as Row[],
    );
    const counts = new Map<string, Record<DeviceState, number>>();
    for (const r of rows) {
      const perCa = counts.get(str(r.ca_id)) ?? { active: 0, pending: 0, disabled: 0, revoked: 0 };
      const state = str(r.state);
      if (state in perCa) perCa[state as DeviceState] = num(r.n);
      counts.set(str(r.ca_id), perCa);
    }
    return counts;
  },

  async setDeviceState(uuid: string, state: DeviceState, reason: string | null, audit: AuditEntry): Promise<Device> {
    return core.write(() => {
      const r = core.stmt('SELECT * FROM devices WHERE uuid = ?').get(uuid) as Row | undefined;
      if (!r) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      const now = Date.now();
      core.stmt('UPDATE devices SET state = ?, state_reason = ?, updated_at = ? WHERE uuid = ?').run(
        state,
        reason,
        now,
        uuid,
      );
      // Tokens of a device that is no longer active must not outlive that decision. They are revoked,
      // not deleted, until they expire: a device presenting one then hears why it was refused.
      if (state !== 'active') core.stmt('UPDATE api_tokens SET revoked_at = ? WHERE device_uuid = ? AND revoked_at IS NULL').run(now, uuid);
      core.audit(audit);
      return toDevice({ ...r, state, state_reason: reason, updated_at: now });
    });
  },

  async deleteDevice(uuid: string, audit: AuditEntry): Promise<void> {
    core.write(() => {
      const r = core.stmt('SELECT * FROM devices WHERE uuid = ?').get(uuid) as Row | undefined;
      if (!r) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      const now = Date.now();
      core.stmt(
        `INSERT INTO device_tombstones(uuid, factory_id, was_test, revoked, deleted_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(uuid) DO UPDATE SET was_test = max(was_test, excluded.was_test), revoked = max(revoked, excluded.revoked),
                                         deleted_at = excluded.deleted_at`,
      ).run(uuid, str(r.factory_id), num(r.is_test), str(r.state) === 'revoked' ? 1 : 0, now);
      for (const fingerprint of [r.certificate_fingerprint, r.previous_certificate_fingerprint]) {
        if (fingerprint === null || fingerprint === undefined) continue;
        core.stmt('INSERT OR IGNORE INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?)').run(str(fingerprint), uuid, now);
      }
      core.stmt('DELETE FROM devices WHERE uuid = ?').run(uuid);
      core.audit(audit);
    });
  },

  async getDeviceTombstone(uuid: string): Promise<DeviceTombstone | null> {
    const r = core.read(
      () =>
        core.stmt('SELECT t.*, f.name AS factory_name FROM device_tombstones t JOIN factories f ON f.id = t.factory_id WHERE t.uuid = ?').get(uuid) as
          | Row
          | undefined,
    );
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

  async rotateDeviceCertificate(uuid: string, rotation: DeviceCertificateRotation, audit: AuditEntry): Promise<void> {
    core.write(() => {
      const now = Date.now();
      try {
        const info = core.stmt(
          `UPDATE devices SET certificate_pem = ?, certificate_fingerprint = ?, public_key_fingerprint = ?, not_after = ?,
                              previous_certificate_fingerprint = ?, updated_at = ?
            WHERE uuid = ?`,
        ).run(
          rotation.certificatePem,
          rotation.certificateFingerprint,
          rotation.publicKeyFingerprint,
          rotation.notAfter,
          rotation.previousCertificateFingerprint,
          now,
          uuid,
        );
        if (info.changes === 0) throw notFound('device_not_found', `no device with UUID ${uuid}`);
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('certificate_in_use', 'this certificate is already enrolled for another device');
        throw e;
      }
      for (const fingerprint of rotation.retire) {
        core.stmt('INSERT OR IGNORE INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?)').run(fingerprint, uuid, now);
      }
      // The rotation used up whatever next key the device had announced.
      core.stmt('DELETE FROM device_next_keys WHERE device_uuid = ?').run(uuid);
      core.audit(audit);
    });
  },

  async retirePreviousCertificate(uuid: string, fingerprint: string, audit: AuditEntry): Promise<boolean> {
    return core.write(() => {
      const info = core.stmt(
        'UPDATE devices SET previous_certificate_fingerprint = NULL WHERE uuid = ? AND previous_certificate_fingerprint = ?',
      ).run(uuid, fingerprint);
      if (info.changes === 0) return false;
      core.stmt('INSERT OR IGNORE INTO retired_certificates(fingerprint256, device_uuid, retired_at) VALUES (?, ?, ?)').run(fingerprint, uuid, Date.now());
      core.audit(audit);
      return true;
    });
  },

  async isCertificateRetired(fingerprint: string): Promise<boolean> {
    return core.read(() => core.stmt('SELECT 1 FROM retired_certificates WHERE fingerprint256 = ?').get(fingerprint) !== undefined);
  },

  async putNextKey(key: AnnouncedNextKey, audit: AuditEntry): Promise<void> {
    core.write(() => {
      core.stmt(
        `INSERT INTO device_next_keys(device_uuid, public_key_fingerprint, announced_at) VALUES (?, ?, ?)
         ON CONFLICT(device_uuid) DO UPDATE SET public_key_fingerprint = excluded.public_key_fingerprint, announced_at = excluded.announced_at`,
      ).run(key.deviceUuid, key.publicKeyFingerprint, key.announcedAt);
      core.audit(audit);
    });
  },

  async getNextKey(uuid: string): Promise<AnnouncedNextKey | null> {
    const r = core.read(() => core.stmt('SELECT * FROM device_next_keys WHERE device_uuid = ?').get(uuid) as Row | undefined);
    return r ? { deviceUuid: str(r.device_uuid), publicKeyFingerprint: str(r.public_key_fingerprint), announcedAt: num(r.announced_at) } : null;
  },

  async clearNextKey(uuid: string, audit: AuditEntry): Promise<boolean> {
    return core.write(() => {
      if (core.stmt('DELETE FROM device_next_keys WHERE device_uuid = ?').run(uuid).changes === 0) return false;
      core.audit(audit);
      return true;
    });
  },

  async countDevicesExpiring(from: number, until: number): Promise<Record<string, number>> {
    const rows = core.read(
      () =>
        core.stmt(
          "SELECT factory_id, COUNT(*) AS n FROM devices WHERE state = 'active' AND not_after > ? AND not_after <= ? GROUP BY factory_id",
        ).all(from, until) as Row[],
    );
    return Object.fromEntries(rows.map((r) => [str(r.factory_id), num(r.n)]));
  },

  async countDevicesByState(): Promise<Record<DeviceState, number>> {
    const counts: Record<DeviceState, number> = { active: 0, pending: 0, disabled: 0, revoked: 0 };
    const rows = core.read(() => core.stmt('SELECT state, COUNT(*) AS n FROM devices GROUP BY state').all() as Row[]);
    for (const r of rows) {
      const state = str(r.state);
      if (state in counts) counts[state as DeviceState] = num(r.n);
    }
    return counts;
  }
  };
}
