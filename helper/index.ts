/** The credential helper's API, for reuse (device tooling) and tests. */
export { runHelper, type HelperOptions, type HelperResult } from './run.js';
export {
  DEFAULT_DEVICE_CONFIG_PATH,
  DEVICE_CONFIG_ENV,
  deviceConfigPath,
  loadDeviceConfig,
  loadDeviceIdentity,
  readDeviceSettings,
  type DeviceConfig,
  type DeviceSettings,
} from './config.js';
export { fetchHubCreds, type FetchOptions, type HubCreds } from './gateway-client.js';
export { DeviceConfigError, GatewayError, HelperError } from './errors.js';
export { CREDENTIALS_NOT_FOUND, registryHost } from './protocol.js';
export { CACHE_DIR_ENV, CredentialCache, isFresh } from './cache.js';
export { deviceSettings } from './settings.js';
export { DEFAULT_SOTA_PATHS, readSotaSettings, SOTA_PATHS_ENV } from './sota.js';
