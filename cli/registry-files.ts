import { join } from 'node:path';
import { registryTokenSettings, writeRegistryConfig, type WrittenRegistryConfig } from '../authsvc/registry-config.js';
import type { AuthorityDeps } from '../shared/authority/index.js';
import type { LoadedConfig } from '../shared/config.js';

/** Where `tollgate registry-config` (and `init`, `up`) write what a registry needs, by default. */
export function registryDir(config: LoadedConfig): string {
  return join(config.pkiDir, 'registry');
}

export async function writeRegistryFiles(config: LoadedConfig, deps: AuthorityDeps, out: string, registryPath?: string): Promise<WrittenRegistryConfig> {
  return writeRegistryConfig(out, {
    ...registryTokenSettings(config),
    keys: await deps.store.listSigningKeys(),
    ...(registryPath !== undefined ? { directory: registryPath } : {}),
  });
}
