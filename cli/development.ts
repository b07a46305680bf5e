import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { WrittenRegistryConfig } from '../authsvc/registry-config.js';
import type { LoadedConfig } from '../shared/config.js';
import { developmentGatewayTls, seedDevelopmentStore } from '../shared/development.js';
import { writeFileAtomic } from '../shared/files.js';
import type { GatewayTlsMaterial } from '../shared/gateway-tls.js';
import { generateKekText } from '../shared/kek.js';
import type { Context } from './context.js';
import { registryDir, writeRegistryFiles } from './registry-files.js';

/** What `init` does and `up` does first: development PKI, seed data, registry files. */
export interface Prepared {
  config: LoadedConfig;
  tls: GatewayTlsMaterial;
  registry: WrittenRegistryConfig;
}

/** Idempotent: what exists is reused. */
export async function prepareDevelopment(ctx: Context): Promise<Prepared> {
  const config = ctx.config();
  // A development setup with keys in the database gets its key-encryption key made here, once.
  const kekFile = config.store.keyEncryptionKeyFile;
  if (kekFile !== undefined && !existsSync(kekFile)) {
    mkdirSync(dirname(kekFile), { recursive: true, mode: 0o700 });
    writeFileAtomic(kekFile, generateKekText(), 0o600);
    ctx.io.stderr(`tollgate: generated a key-encryption key in ${kekFile}; give every instance this file, and back it up apart from the database\n`);
  }
  const deps = ctx.authority({ create: true });
  await deps.store.ready();
  const tls = await developmentGatewayTls(config, undefined, deps.keys);
  await seedDevelopmentStore(deps);
  const registry = await writeRegistryFiles(config, deps, registryDir(config));
  return { config, tls, registry };
}
