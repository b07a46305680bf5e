import crypto from 'node:crypto';
import path from 'node:path';
import { DeviceConfigError } from './errors.js';
import { FileReadError, MAX_FILE_BYTES, readCappedFile } from './files.js';
import { registryHost } from './protocol.js';

/**
 * The device config: which gateway to ask, with which identity, for which registries.
 *
 * ```json
 * {
 *   "gateway": "https://gateway.example.com:8443",
 *   "certificate": "client.pem",
 *   "privateKey": "client.key",
 *   "caBundle": "gateway-ca.pem",
 *   "registries": ["127.0.0.1:5000", "hub.example.com"]
 * }
 * ```
 *
 * Location: the file named by the environment variable `TOLLGATE_DEVICE_CONFIG`, else
 * `/etc/tollgate/device.json`. Relative file paths in it resolve against the directory of the config
 * file, so a config and its PEM files can be moved together. The config and each PEM file are
 * limited to 64 KiB.
 */

export const DEFAULT_DEVICE_CONFIG_PATH = '/etc/tollgate/device.json';
export const DEVICE_CONFIG_ENV = 'TOLLGATE_DEVICE_CONFIG';
/** sota.toml files and directories to read instead (helper/sota.ts), colon-separated. */
export const SOTA_PATHS_ENV = 'TOLLGATE_SOTA_PATHS';

export const MAX_CONFIG_BYTES = 64 * 1024;
export const MAX_PEM_FILE_BYTES = MAX_FILE_BYTES;

export interface LoadedPem {
  /** Absolute path it was read from. */
  path: string;
  pem: string;
}

export interface DeviceCertificate extends LoadedPem {
  /** SHA-256 of the leaf certificate's DER, lower-case hex without colons. */
  fingerprint256: string;
  /** The subject CN: the device UUID for certificates Tollgate issues. */
  commonName: string | undefined;
  notBefore: Date;
  notAfter: Date;
}

export interface DeviceConfig {
  /** Absolute path of the config file, for messages. */
  path: string;
  /** The gateway base URL, https, without a trailing slash. */
  gateway: string;
  /** Where to ask for registry credentials, when not `<gateway>/hub-creds/` (sota.toml's uptane.repo_server). */
  hubCredsUrl?: string;
  /** Registries this device asks the gateway for, as lower-case host[:port]. */
  registries: string[];
  certificate: DeviceCertificate;
  privateKey: LoadedPem;
  caBundle: LoadedPem;
}

/** Where the device config is, per the environment. */
export function deviceConfigPath(env: NodeJS.ProcessEnv): string {
  const fromEnv = env[DEVICE_CONFIG_ENV];
  return path.resolve(fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv.trim() : DEFAULT_DEVICE_CONFIG_PATH);
}

export const KEYS = ['gateway', 'certificate', 'privateKey', 'caBundle', 'registries'] as const;

export function gatewayProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL; expected https://host[:port]`;
  }
  if (url.protocol !== 'https:') return `must be an https:// URL (the gateway is reached over mutual TLS), not ${url.protocol}//`;
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password';
  if (url.search !== '' || url.hash !== '') return 'must not contain a query or fragment';
  return undefined;
}

/** The config file's fields as the schema (helper/config-schema.ts) yields them. */
export interface RawDeviceConfig {
  gateway: string;
  certificate: string;
  privateKey: string;
  caBundle: string;
  registries: string[];
}

/**
 * The config as the schema would accept it, or undefined when the schema has to judge. The
 * credential helper reads this file on every call, and loading zod costs more CPU than starting
 * Node itself (measured in bench/, suite device): so a config that is plainly valid is taken by
 * these few checks, which accept nothing the schema refuses (a property test holds them to that),
 * and everything else goes to the schema, the one source of the precise refusals.
 */
export function plainDeviceConfig(json: unknown): RawDeviceConfig | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  if (Object.keys(o).some((k) => !(KEYS as readonly string[]).includes(k))) return undefined;
  const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  const [gateway, certificate, privateKey, caBundle] = [text(o.gateway), text(o.certificate), text(o.privateKey), text(o.caBundle)];
  if (gateway === undefined || certificate === undefined || privateKey === undefined || caBundle === undefined) return undefined;
  if (gatewayProblem(gateway) !== undefined) return undefined;
  const registries = o.registries;
  if (!Array.isArray(registries) || registries.length === 0) return undefined;
  if (!registries.every((r) => typeof r === 'string' && registryHost(r) !== undefined)) return undefined;
  return { gateway, certificate, privateKey, caBundle, registries: registries as string[] };
}

/** Origin plus any path prefix, without a trailing slash: one spelling per gateway for the cache key. */
function normaliseGateway(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function fail(configPath: string, message: string, code = 'device_config_invalid'): never {
  throw new DeviceConfigError(code, `device config ${configPath}: ${message}`);
}

async function readReferenced(configPath: string, key: string, file: string): Promise<string> {
  try {
    return await readCappedFile(file, MAX_PEM_FILE_BYTES);
  } catch (e) {
    if (e instanceof FileReadError) fail(configPath, `${key}: ${e.message}`, e.reason === 'not_found' ? 'device_file_not_found' : 'device_file_unreadable');
    throw e;
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block, parsed; a text without one, or with a damaged one, is refused. */
function certificates(configPath: string, key: string, pem: string, file: string): crypto.X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) fail(configPath, `${key}: no "-----BEGIN CERTIFICATE-----" block in ${file}`);
  return blocks.map((block, i) => {
    try {
      return new crypto.X509Certificate(block);
    } catch {
      return fail(configPath, `${key}: certificate ${i + 1} in ${file} is not a valid X.509 certificate`);
    }
  });
}

function commonNameOf(cert: crypto.X509Certificate): string | undefined {
  // node renders the subject one attribute per line, e.g. "O=Acme\nCN=3f6c...".
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3).replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

function privateKeyOf(configPath: string, pem: string, file: string): crypto.KeyObject {
  // Checked on the text: which error OpenSSL gives for a missing passphrase differs between versions.
  const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /^Proc-Type:\s*4,ENCRYPTED/m.test(pem);
  if (encrypted) {
    fail(configPath, `privateKey: ${file} is encrypted; the helper needs an unencrypted key (protect it with file mode 0600 instead)`);
  }
  try {
    return crypto.createPrivateKey(pem);
  } catch {
    return fail(configPath, `privateKey: ${file} is not a readable PEM private key`);
  }
}

/** The config file's own settings, before any file it names is read. */
export interface DeviceSettings {
  /** Absolute path of the config file, for messages. */
  path: string;
  gateway: string;
  hubCredsUrl?: string;
  registries: string[];
  certificatePath: string;
  privateKeyPath: string;
  caBundlePath: string;
}

/**
 * Reads and validates the config file alone. `get` consults `registries` before touching the PEM
 * files, so a broken device identity never gets in the way of registries Tollgate does not serve.
 */
export async function readDeviceSettings(configPath: string): Promise<DeviceSettings> {
  const absolute = path.resolve(configPath);
  let text: string;
  try {
    text = await readCappedFile(absolute, MAX_CONFIG_BYTES);
  } catch (e) {
    if (e instanceof FileReadError) {
      const message = e.reason === 'not_found' ? `file not found (set ${DEVICE_CONFIG_ENV} to use another file)` : e.message.replace(` (${absolute})`, '');
      fail(absolute, message, e.reason === 'not_found' ? 'device_config_not_found' : 'device_config_unreadable');
    }
    throw e;
  }

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(absolute, `not valid JSON (${(e as Error).message})`);
  }
  const raw = plainDeviceConfig(json) ?? (await import('./config-schema.js')).checkDeviceConfig(json, (problems) => fail(absolute, problems));
  const dir = path.dirname(absolute);
  return {
    path: absolute,
    gateway: normaliseGateway(raw.gateway),
    registries: [...new Set(raw.registries.map((r) => registryHost(r) as string))],
    certificatePath: path.resolve(dir, raw.certificate),
    privateKeyPath: path.resolve(dir, raw.privateKey),
    caBundlePath: path.resolve(dir, raw.caBundle),
  };
}

/**
 * Reads the device identity the settings name: the certificate and key must parse and belong
 * together, the CA bundle must hold at least one certificate.
 */
export async function loadDeviceIdentity(settings: DeviceSettings): Promise<DeviceConfig> {
  const { path: configPath, certificatePath, privateKeyPath, caBundlePath } = settings;
  const [certificatePem, privateKeyPem, caBundlePem] = await Promise.all([
    readReferenced(configPath, 'certificate', certificatePath),
    readReferenced(configPath, 'privateKey', privateKeyPath),
    readReferenced(configPath, 'caBundle', caBundlePath),
  ]);

  const leaf = certificates(configPath, 'certificate', certificatePem, certificatePath)[0] as crypto.X509Certificate;
  const key = privateKeyOf(configPath, privateKeyPem, privateKeyPath);
  if (!leaf.checkPrivateKey(key)) {
    fail(configPath, `privateKey: ${privateKeyPath} is not the private key of the certificate in ${certificatePath}`);
  }
  certificates(configPath, 'caBundle', caBundlePem, caBundlePath);

  return {
    path: configPath,
    gateway: settings.gateway,
    ...(settings.hubCredsUrl !== undefined ? { hubCredsUrl: settings.hubCredsUrl } : {}),
    registries: settings.registries,
    certificate: {
      path: certificatePath,
      pem: certificatePem,
      fingerprint256: crypto.createHash('sha256').update(leaf.raw).digest('hex'),
      commonName: commonNameOf(leaf),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    },
    privateKey: { path: privateKeyPath, pem: privateKeyPem },
    caBundle: { path: caBundlePath, pem: caBundlePem },
  };
}

/**
 * Reads and checks the device config and the files it names. Failures are DeviceConfigErrors
 * naming the file, the key and what is wrong, e.g.
 * `device config /etc/tollgate/device.json: certificate: file not found (/etc/tollgate/client.pem)`.
 */
export async function loadDeviceConfig(configPath: string): Promise<DeviceConfig> {
  return loadDeviceIdentity(await readDeviceSettings(configPath));
}
