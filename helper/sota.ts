import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { gatewayProblem, SOTA_PATHS_ENV, type DeviceSettings } from './config.js';
import { DeviceConfigError } from './errors.js';
import { FileReadError, readCappedFile } from './files.js';
import { registryHost } from './protocol.js';

/**
 * The device configuration Foundries devices keep: sota.toml files, as aktualizr-lite, fioconfig
 * and lmp-device-register lay them out, read the way fioconfig's sotatoml package reads them.
 *
 * - Sources, in order: `/usr/lib/sota/conf.d/*.toml` (the image's defaults), `/var/sota/sota.toml`
 *   (what registration wrote), `/etc/sota/conf.d/*.toml` (local changes). A file replaces an earlier
 *   one of the same base name.
 * - The files are then taken in reverse alphabetical order of their base names, and a key's value is
 *   the first non-empty one found: `z-50-fioctl.toml` beats `sota.toml`.
 *
 * Keys used: `tls.server` (the gateway), `import.tls_clientcert_path`, `import.tls_pkey_path`,
 * `import.tls_cacert_path`, `tls.pkey_source`/`tls.cert_source` (only `file` is served here),
 * `uptane.repo_server` (aktualizr-lite asks its parent + `/hub-creds/` for registry credentials),
 * and `tollgate.registries` (comma-separated host[:port] the helper answers for).
 */

export { SOTA_PATHS_ENV };
export const DEFAULT_SOTA_PATHS: readonly string[] = ['/usr/lib/sota/conf.d', '/var/sota/sota.toml', '/etc/sota/conf.d'];
const MAX_SOTA_FILE_BYTES = 64 * 1024;

export interface SotaFile {
  /** Base name: what orders the files and lets a later directory replace an earlier file. */
  name: string;
  path: string;
  tree: Record<string, unknown>;
}

/** The sources named by TOLLGATE_SOTA_PATHS (colon-separated), else the standard three. */
export function sotaPaths(env: NodeJS.ProcessEnv): string[] {
  const fromEnv = env[SOTA_PATHS_ENV]?.trim();
  if (!fromEnv) return [...DEFAULT_SOTA_PATHS];
  return fromEnv.split(':').filter((p) => p.trim() !== '').map((p) => path.resolve(p.trim()));
}

async function kindOf(file: string): Promise<'file' | 'dir' | null> {
  try {
    const stat = await fsp.stat(file);
    return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

/** The files the sources hold, most significant first (reverse alphabetical by base name). */
export async function readSotaFiles(sources: readonly string[]): Promise<SotaFile[]> {
  const byName = new Map<string, string>();
  for (const source of sources) {
    const kind = await kindOf(source);
    if (kind === 'file') byName.set(path.basename(source), source);
    if (kind === 'dir') {
      for (const entry of (await fsp.readdir(source)).sort()) {
        if (entry.endsWith('.toml')) byName.set(entry, path.join(source, entry));
      }
    }
  }
  const names = [...byName.keys()].sort().reverse();
  const files: SotaFile[] = [];
  for (const name of names) {
    const file = byName.get(name) as string;
    let text: string;
    try {
      text = await readCappedFile(file, MAX_SOTA_FILE_BYTES);
    } catch (e) {
      if (e instanceof FileReadError) {
        // A directory entry that is not a readable file (a dangling link, say) is no configuration.
        if (e.reason === 'not_found' || e.reason === 'not_a_file') continue;
        throw new DeviceConfigError('device_config_unreadable', `sota config ${file}: ${e.message}`);
      }
      throw e;
    }
    try {
      files.push({ name, path: file, tree: parse(text) as Record<string, unknown> });
    } catch (e) {
      throw new DeviceConfigError('device_config_invalid', `sota config ${file}: not valid TOML (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return files;
}

/** The first non-empty string value of `key` (`section.name`) across `files`, in their order. */
export function sotaValue(files: readonly SotaFile[], key: string): string | undefined {
  const [section, name] = key.split('.') as [string, string];
  for (const file of files) {
    const table = file.tree[section];
    if (typeof table !== 'object' || table === null) continue;
    const value = (table as Record<string, unknown>)[name];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return undefined;
}

/** aktualizr-lite's hub-creds URL: `uptane.repo_server` up to its last '/', then `/hub-creds/`. */
export function hubCredsUrlFrom(repoServer: string): string | undefined {
  const slash = repoServer.lastIndexOf('/');
  return slash < 0 ? undefined : `${repoServer.slice(0, slash)}/hub-creds/`;
}

/** The helper's settings from the sota.toml layout at `sources`. */
export async function readSotaSettings(sources: readonly string[]): Promise<DeviceSettings> {
  const files = await readSotaFiles(sources);
  const where = `sota config (${sources.join(', ')})`;
  const fail = (message: string, code = 'device_config_invalid'): never => {
    throw new DeviceConfigError(code, `${where}: ${message}`);
  };
  if (files.length === 0) fail('no sota.toml file found', 'device_config_not_found');
  const get = (key: string) => sotaValue(files, key);
  const required = (key: string) => get(key) ?? fail(`${key} is not set`);

  for (const source of ['tls.pkey_source', 'tls.cert_source']) {
    const value = get(source) ?? 'file';
    if (value !== 'file') {
      fail(`${source} is "${value}": the key or certificate is in a PKCS#11 token, and docker-credential-tollgate reads them from files only`, 'device_config_unsupported');
    }
  }
  const server = required('tls.server').replace(/\/+$/, '');
  const problem = gatewayProblem(server);
  if (problem) fail(`tls.server ${problem}`);
  const registries = (get('tollgate.registries') ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  if (registries.length === 0) {
    fail('tollgate.registries is not set: name the registries (host[:port], comma-separated) the credential helper answers for, e.g. in /etc/sota/conf.d/50-tollgate.toml');
  }
  const hosts = registries.map((r) => registryHost(r) ?? fail(`tollgate.registries: "${r}" is not a registry host[:port]`));
  const repoServer = get('uptane.repo_server');
  const hubCredsUrl = repoServer === undefined ? undefined : hubCredsUrlFrom(repoServer);
  const newest = files[0] as SotaFile;
  return {
    path: newest.path,
    gateway: server,
    ...(hubCredsUrl !== undefined ? { hubCredsUrl } : {}),
    registries: [...new Set(hosts)],
    certificatePath: path.resolve(required('import.tls_clientcert_path')),
    privateKeyPath: path.resolve(required('import.tls_pkey_path')),
    caBundlePath: path.resolve(required('import.tls_cacert_path')),
  };
}
