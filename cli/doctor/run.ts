import type { LoadedConfig } from '../../shared/config.js';
import { isTollgateError } from '../../shared/errors.js';
import type { SigningKeyRecord } from '../../shared/store/types.js';
import { error, type Finding } from './findings.js';
import { checkKeyHint } from './key-hint.js';
import { probeGateway, probeRealm, probeRegistry } from './probes.js';
import { readRegistryTokenSection } from './registry-file.js';
import { checkSettings } from './settings.js';
import { checkRegistryLog } from './registry-log.js';
import { checkBundle, checkJwks, checkSigningKey, type TokenKeyHint } from './trust.js';

export interface DoctorInput {
  config: LoadedConfig;
  keys: readonly SigningKeyRecord[];
  registryConfigFile: string;
  registryUrl?: string;
  /** The registry's log file, to explain the refusals it recorded. */
  registryLogFile?: string;
  /** What the realm's token headers carry for the registry to find the key by (default: authsvc.tokenKeyHint). */
  keyHint?: TokenKeyHint;
  now?: () => number;
}

/** Every check, in the order a person would fix things: files first, then what runs. */
export async function runDoctor(input: DoctorInput): Promise<Finding[]> {
  const now = input.now ?? Date.now;
  const { config } = input;
  const hint = input.keyHint ?? config.authsvc.tokenKeyHint;
  const findings: Finding[] = [];
  const { active, findings: keyFindings } = checkSigningKey(input.keys, new Date(now()));
  findings.push(...keyFindings);
  try {
    const section = readRegistryTokenSection(input.registryConfigFile);
    findings.push(...checkSettings(section, config, input.registryConfigFile));
    findings.push(...checkBundle(section, active, new Date(now()), hint));
    findings.push(...checkJwks(section, active, hint));
    findings.push(...checkKeyHint(section, hint));
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
  if (input.registryLogFile !== undefined) findings.push(...checkRegistryLog(input.registryLogFile, hint));
  return findings;
}
