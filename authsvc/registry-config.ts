/**
 * What a Docker distribution registry needs to trust the realm's tokens: the signing certificates
 * (root certificate bundle), the JWKS, and the `auth.token` section for registry 2.8 and 3.x.
 *
 * The realm's tokens name their key by its libtrust key id in `kid`, and with
 * `authsvc.tokenKeyHint: x5c` also carry the signing certificate in `x5c`. Registry 2.8 finds a
 * kid-only token's key among the bundle's certificates; 3.x keys its bundle by RFC 7638 thumbprint,
 * so it finds a libtrust kid only in the JWKS (3.x `auth.token.jwks`, with explicit kids). A token
 * with `x5c` is verified by both against `rootcertbundle`, and 3.x then never consults its JWKS (a
 * 3.x configuration with a JWKS but no bundle refuses every such token). The 3.x snippet lists the
 * JWKS and `signingalgorithms` so either kind of token
 * verifies. Both read these files at start-up only: publish the bundle with a new key while it is
 * still `trusted`, restart the registry, then activate the key.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { realmUrl, type Config } from '../shared/config.js';
import { conflict } from '../shared/errors.js';
import { parseCertificate } from '../shared/pki/index.js';
import type { SigningKeyRecord } from '../shared/store/types.js';
import { writeFileAtomic } from '../shared/files.js';
import { jwksJson } from './jwks.js';

/** Public material only (certificates, public keys, settings): readable by the registry's user. */
const PUBLIC_MODE = 0o644;

export const REGISTRY_FILES = {
  rootBundle: 'root-bundle.pem',
  jwks: 'jwks.json',
  auth28: 'auth-2.8.yml',
  auth3: 'auth-3.yml',
} as const;

export interface RegistryTokenSettings {
  /** The realm URL the registry sends clients to. */
  realm: string;
  service: string;
  issuer: string;
}

export interface RegistryConfigInput extends RegistryTokenSettings {
  /** Signing key records as the store lists them; retired ones are left out here. */
  keys: readonly Pick<SigningKeyRecord, 'kid' | 'alg' | 'certificatePem' | 'status'>[];
  /**
   * The directory holding the files as the registry sees it (e.g. a container mount point), for the
   * paths in the YAML snippets.
   */
  directory: string;
}

export interface RegistryConfigFiles {
  rootBundlePem: string;
  jwksJson: string;
  /** `auth:` section for registry 2.8 (realm, service, issuer, rootcertbundle). */
  auth28Yaml: string;
  /** `auth:` section for registry 3.x (plus jwks and signingalgorithms). */
  auth3Yaml: string;
  /** The kids that went in, active first. */
  kids: string[];
}

/** realm, service and issuer as Tollgate's own configuration has them. */
export function registryTokenSettings(config: Config): RegistryTokenSettings {
  return { realm: realmUrl(config), service: config.authsvc.service, issuer: config.authsvc.issuer };
}

/** Builds the files' contents. Nothing is read or written. */
export async function registryConfig(input: RegistryConfigInput): Promise<RegistryConfigFiles> {
  const keys = input.keys
    .filter((k) => k.status === 'active' || k.status === 'trusted')
    // Active first, so a reader of the bundle sees the key in use at the top.
    .map((k, index) => ({ k, index }))
    .sort((a, b) => (a.k.status === b.k.status ? a.index - b.index : a.k.status === 'active' ? -1 : 1))
    .map(({ k }) => k);
  if (keys.length === 0) {
    // The registry refuses to start without a key; better to say so here than in its log.
    throw conflict('signing_keys_missing', 'there is no trusted or active token-signing key to publish; create one first');
  }
  // Parsing normalises each PEM and refuses a damaged one instead of writing a bundle the
  // registry would silently read only part of.
  const certificates = keys.map((k) => parseCertificate(k.certificatePem));
  const rootBundlePem = certificates.map((c) => c.pem).join('');
  const jwks = await jwksJson(keys.map((k, i) => ({ kid: k.kid, alg: k.alg, certificateDer: certificates[i]!.der })));

  const directory = input.directory;
  const token28 = {
    realm: input.realm,
    service: input.service,
    issuer: input.issuer,
    rootcertbundle: joinForRegistry(directory, REGISTRY_FILES.rootBundle),
  };
  const algorithms = [...new Set(keys.map((k) => k.alg))];
  const token3 = { ...token28, jwks: joinForRegistry(directory, REGISTRY_FILES.jwks), signingalgorithms: algorithms };
  return {
    rootBundlePem,
    jwksJson: jwks,
    auth28Yaml: stringify({ auth: { token: token28 } }),
    auth3Yaml: stringify({ auth: { token: token3 } }),
    kids: keys.map((k) => k.kid),
  };
}

/** Paths inside the registry's file system are POSIX, whatever the machine writing them. */
function joinForRegistry(directory: string, file: string): string {
  return `${directory.replace(/\/+$/, '')}/${file}`;
}

export interface WrittenRegistryConfig extends RegistryConfigFiles {
  /** Absolute paths of the four files. */
  paths: { rootBundle: string; jwks: string; auth28: string; auth3: string };
}

/**
 * Writes the four files into `dir`, each atomically (temp file + rename), so a registry that
 * restarts meanwhile reads either the old or the new file, never half of one. `directory` in the
 * snippets defaults to `dir` itself.
 */
export async function writeRegistryConfig(
  dir: string,
  input: Omit<RegistryConfigInput, 'directory'> & { directory?: string },
): Promise<WrittenRegistryConfig> {
  const target = resolve(dir);
  const files = await registryConfig({ ...input, directory: input.directory ?? target });
  mkdirSync(target, { recursive: true, mode: 0o755 });
  const paths = {
    rootBundle: join(target, REGISTRY_FILES.rootBundle),
    jwks: join(target, REGISTRY_FILES.jwks),
    auth28: join(target, REGISTRY_FILES.auth28),
    auth3: join(target, REGISTRY_FILES.auth3),
  };
  writeFileAtomic(paths.rootBundle, files.rootBundlePem, PUBLIC_MODE);
  writeFileAtomic(paths.jwks, files.jwksJson, PUBLIC_MODE);
  writeFileAtomic(paths.auth28, files.auth28Yaml, PUBLIC_MODE);
  writeFileAtomic(paths.auth3, files.auth3Yaml, PUBLIC_MODE);
  return { ...files, paths };
}

