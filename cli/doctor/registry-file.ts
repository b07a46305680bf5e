import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { invalidInput } from '../../shared/errors.js';

/** The `auth.token` section of a registry configuration, as far as Tollgate cares. */
export interface RegistryTokenSection {
  realm?: string;
  service?: string;
  issuer?: string;
  rootcertbundle?: string;
  /** Registry 3.x only. */
  jwks?: string;
  signingalgorithms?: string[];
}

const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Reads a registry configuration file (the whole file, or just its `auth:` section) and returns
 * `auth.token`. Throws invalid_input with a stable code when the file cannot be used.
 */
export function readRegistryTokenSection(file: string): RegistryTokenSection {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw invalidInput('registry_config_unreadable', `${file}: cannot read the registry configuration (${(e as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { maxAliasCount: 10 });
  } catch (e) {
    throw invalidInput('registry_config_syntax', `${file}: not valid YAML: ${(e as Error).message}`);
  }
  const token = (parsed as { auth?: { token?: unknown } } | null)?.auth?.token;
  if (typeof token !== 'object' || token === null) {
    throw invalidInput('registry_auth_token_missing', `${file}: has no auth.token section; the registry does not use token authentication`);
  }
  const t = token as Record<string, unknown>;
  const algs = Array.isArray(t.signingalgorithms) ? t.signingalgorithms.filter((a): a is string => typeof a === 'string') : undefined;
  return {
    realm: asString(t.realm),
    service: asString(t.service),
    issuer: asString(t.issuer),
    rootcertbundle: asString(t.rootcertbundle),
    jwks: asString(t.jwks),
    ...(algs ? { signingalgorithms: algs } : {}),
  };
}
