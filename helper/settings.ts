import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DEFAULT_DEVICE_CONFIG_PATH, DEVICE_CONFIG_ENV, readDeviceSettings, SOTA_PATHS_ENV, type DeviceSettings } from './config.js';
import { DeviceConfigError } from './errors.js';

/** The sota.toml reader (and its TOML parser) is loaded only on devices configured that way. */
const sota = () => import('./sota.js');

/**
 * Which device configuration the helper and `tollgate device renew` use, first match wins:
 * 1. `$TOLLGATE_DEVICE_CONFIG` (a Tollgate device.json);
 * 2. `$TOLLGATE_SOTA_PATHS` (sota.toml files and directories, colon-separated);
 * 3. `/etc/tollgate/device.json`, if it exists;
 * 4. the standard sota.toml layout of a Foundries device (/usr/lib/sota/conf.d, /var/sota/sota.toml,
 *    /etc/sota/conf.d).
 */
export async function deviceSettings(env: NodeJS.ProcessEnv): Promise<DeviceSettings> {
  const explicit = env[DEVICE_CONFIG_ENV]?.trim();
  if (explicit) return readDeviceSettings(path.resolve(explicit));
  if (env[SOTA_PATHS_ENV]?.trim()) {
    const { readSotaSettings, sotaPaths } = await sota();
    return readSotaSettings(sotaPaths(env));
  }
  const hasDefault = await fsp.access(DEFAULT_DEVICE_CONFIG_PATH).then(
    () => true,
    () => false,
  );
  if (hasDefault) return readDeviceSettings(DEFAULT_DEVICE_CONFIG_PATH);
  const { DEFAULT_SOTA_PATHS, readSotaSettings } = await sota();
  try {
    return await readSotaSettings(DEFAULT_SOTA_PATHS);
  } catch (e) {
    if (e instanceof DeviceConfigError && e.code === 'device_config_not_found') {
      throw new DeviceConfigError(
        'device_config_not_found',
        `no device configuration: neither ${DEFAULT_DEVICE_CONFIG_PATH} nor a sota.toml (${DEFAULT_SOTA_PATHS.join(', ')}); set ${DEVICE_CONFIG_ENV} or ${SOTA_PATHS_ENV}`,
      );
    }
    throw e;
  }
}
