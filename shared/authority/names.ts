import { invalidInput } from '../errors.js';

/**
 * Names that become parts of certificates and registry paths. Kept in one place so the CLI, the
 * admin API and the authority agree on what is valid.
 */

/** A factory name is the first path component of its repositories, so it follows the registry's grammar, stricter. */
export const FACTORY_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
export const FACTORY_NAME_MAX = 64;

/** Devices are named by a canonical lower-case RFC 4122 UUID, the certificate's CN. */
export const DEVICE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function assertFactoryName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > FACTORY_NAME_MAX || !FACTORY_NAME.test(name)) {
    throw invalidInput(
      'factory_name_invalid',
      `factory name must be 1-${FACTORY_NAME_MAX} characters of a-z, 0-9 and single . _ - between them (it becomes the first component of repository names)`,
    );
  }
  return name;
}

export function assertDeviceUuid(uuid: unknown, what = 'device UUID'): string {
  if (typeof uuid !== 'string' || !DEVICE_UUID.test(uuid)) {
    throw invalidInput('device_uuid_invalid', `${what} must be a lower-case UUID such as 3f2c8a52-6b1e-4c59-9a54-0e0f7d1c2b3a`);
  }
  return uuid;
}

/** Free-text labels (device names, token descriptions, reasons): printable, bounded. */
export function assertLabel(value: unknown, field: string, max = 200): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > max || /[\u0000-\u001f\u007f]/.test(value)) {
    throw invalidInput(`${field}_invalid`, `${field} must be a string of at most ${max} printable characters`);
  }
  return value.length === 0 ? null : value;
}
