import { parse, stringify } from 'smol-toml';
import { invalidInput } from './errors.js';

/**
 * The sota.toml a registration answer carries: the configuration Foundries' device software
 * (aktualizr-lite, fioconfig, composeapp) and Tollgate's device side read. Same sections and keys
 * as Foundries' reference registration server writes, pointing at this gateway, plus the device's
 * own `overrides`, and a `[tollgate]` section naming the registries the credential helper serves.
 */

/** `{"section": {"key": "<TOML value as text>"}}`; an empty text means "not set". */
export type SotaOverrides = Record<string, Record<string, string>>;

export interface SotaTomlInput {
  /** The gateway's base URL (tls.server). */
  gateway: string;
  /** Where the device keeps its files (lmp-device-register's --sota-dir). */
  sotaConfigDir: string;
  hardwareId: string;
  /** host[:port] of the registries devices pull from through the credential helper. */
  registries: readonly string[];
  overrides: SotaOverrides;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_OVERRIDES = 64;
const MAX_VALUE_LENGTH = 1024;

/** `value` as a TOML string, escaped by the TOML library rather than by hand. */
function quoted(value: string): string {
  return stringify({ v: value }).trim().slice('v = '.length);
}

/**
 * Refuses overrides that are not plain `key = value` lines: section and key names of letters,
 * digits, `_` and `-`, and values that parse as one TOML value on one line. A value can therefore
 * never open a section or add a key of its own.
 */
export function checkOverrides(overrides: SotaOverrides): void {
  let count = 0;
  for (const [section, entries] of Object.entries(overrides)) {
    if (!NAME.test(section)) throw invalidInput('overrides_invalid', `overrides: section "${section.slice(0, 64)}" must be 1-64 letters, digits, _ or -`);
    for (const [key, value] of Object.entries(entries)) {
      if (++count > MAX_OVERRIDES) throw invalidInput('overrides_invalid', `overrides: at most ${MAX_OVERRIDES} keys`);
      if (!NAME.test(key)) throw invalidInput('overrides_invalid', `overrides.${section}: key "${key.slice(0, 64)}" must be 1-64 letters, digits, _ or -`);
      if (value === '') continue;
      if (value.length > MAX_VALUE_LENGTH || /[\r\n]/.test(value)) {
        throw invalidInput('overrides_invalid', `overrides.${section}.${key}: a value is one line of at most ${MAX_VALUE_LENGTH} characters`);
      }
      let parsed: Record<string, unknown>;
      try {
        parsed = parse(`v = ${value}`);
      } catch {
        throw invalidInput('overrides_invalid', `overrides.${section}.${key}: ${JSON.stringify(value.slice(0, 64))} is not a TOML value (strings are quoted: "\\"main\\"")`);
      }
      if (Object.keys(parsed).length !== 1) throw invalidInput('overrides_invalid', `overrides.${section}.${key}: one value only`);
    }
  }
}

export function renderSotaToml(input: SotaTomlInput): string {
  const dir = input.sotaConfigDir.replace(/\/+$/, '');
  const gateway = input.gateway.replace(/\/+$/, '');
  const sections: Record<string, Record<string, string>> = {
    tls: { server: quoted(gateway), ca_source: '"file"', pkey_source: '"file"', cert_source: '"file"' },
    provision: { server: quoted(gateway), primary_ecu_hardware_id: quoted(input.hardwareId) },
    // aktualizr-lite asks for registry credentials at this URL's parent + /hub-creds/.
    uptane: { repo_server: quoted(`${gateway}/repo`), key_source: '"file"' },
    pacman: { type: '"ostree+compose_apps"', ostree_server: quoted(`${gateway}/treehub`), compose_apps_root: quoted(`${dir}/compose-apps`) },
    storage: { type: '"sqlite"', path: quoted(`${dir}/`) },
    import: {
      tls_cacert_path: quoted(`${dir}/root.crt`),
      tls_pkey_path: quoted(`${dir}/pkey.pem`),
      tls_clientcert_path: quoted(`${dir}/client.pem`),
    },
    tollgate: { registries: quoted(input.registries.join(',')) },
  };
  for (const [section, entries] of Object.entries(input.overrides)) {
    const target = (sections[section] ??= {});
    for (const [key, value] of Object.entries(entries)) target[key] = value;
  }
  const lines: string[] = [];
  for (const [section, entries] of Object.entries(sections)) {
    lines.push(`[${section}]`);
    for (const [key, value] of Object.entries(entries)) lines.push(value === '' ? `# ${key} is not set` : `${key} = ${value}`);
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
