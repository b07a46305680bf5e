import type { LoadedConfig } from '../../shared/config.js';
import { isTollgateError } from '../../shared/errors.js';
import type { SigningKeyRecord } from '../../shared/store/types.js';
import { error, type Finding } from './findings.js';
import { checkKeyHint } from './key-hint.js';
import { probeGateway, probeRealm, probeRegistry } from './probes.js';
import { readRegistryTokenSection } from './registry-file.js';
import { checkSettings } from './settings.js';
import { checkBundle, checkJwks, checkSigningKey } from './trust.js';

export interface DoctorInput {
  config: LoadedConfig;
  keys: readonly SigningKeyRecord[];
  registryConfigFile: string;
  registryUrl?: string;
  now?: () => number;
}

/** Every check, in the order a person would fix things: files first, then what runs. */
export async function runDoctor(input: DoctorInput): Promise<Finding[]> {
  const now = input.now ?? Date.now;
  const { config } = input;
  const findings: Finding[] = [];
  const { active, findings: keyFindings } = checkSigningKey(input.keys, new Date(now()));
  findings.push(...keyFindings);
  try {
    const section = readRegistryTokenSection(input.registryConfigFile);
    findings.push(...checkSettings(section, config, input.registryConfigFile));
    findings.push(...checkBundle(section, active, new Date(now())));
    findings.push(...checkJwks(section, active));
    findings.push(...checkKeyHint(section, config));
  } catch (e) {
    if (!isTollgateError(e)) throw e;
    findings.push(error(e.code, e.message, 'pass the registry configuration file (or its auth: section) with --registry-config'));
  }
  const [realm, gateway, registry] = await Promise.all([
    probeRealm(config, active?.kid ?? null),
    probeGateway(config),
    input.registryUrl ? probeRegistry(input.registryUrl, config, now) : Promise.resolve([]),
  ]);
  findings.push(...realm, ...gateway, ...registry);
  return findings;
}
