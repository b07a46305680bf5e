import type { WrittenRegistryConfig } from '../authsvc/registry-config.js';
import type { LoadedConfig } from '../shared/config.js';
import { developmentGatewayTls, seedDevelopmentStore } from '../shared/development.js';
import type { GatewayTlsMaterial } from '../shared/gateway-tls.js';
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
  const tls = await developmentGatewayTls(config);
  const deps = ctx.authority({ create: true });
  await seedDevelopmentStore(deps);
  const registry = await writeRegistryFiles(config, deps, registryDir(config));
  return { config, tls, registry };
}
