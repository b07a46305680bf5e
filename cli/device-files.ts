import { join } from 'node:path';
import { invalidInput } from '../shared/errors.js';
import type { EnrollmentAnswer } from '../admin/client.js';
import { prepareOutputDir, writeNewFile } from './files.js';

/**
 * The files a device needs, as the credential helper reads them: its certificate, its key, the CA
 * bundle it verifies the gateway with, and `device.json` naming them by relative paths (so the
 * directory can be copied onto the device as it is).
 */
export const DEVICE_FILES = {
  key: 'device.key',
  certificate: 'device.pem',
  ca: 'ca.pem',
  gatewayCa: 'gateway-ca.pem',
  config: 'device.json',
} as const;

export interface DeviceConfig {
  gateway: string;
  certificate: string;
  privateKey: string;
  caBundle: string;
  registries: string[];
}

/** host, host:port, or [v6]:port, as registries are named in image references. */
const REGISTRY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function checkRegistries(values: string[]): string[] {
  for (const r of values) {
    if (!REGISTRY.test(r)) {
      throw invalidInput('registry_invalid', `--registry "${r.slice(0, 80)}" is not a registry host such as registry.example.com or 127.0.0.1:5000 (no scheme, no path)`);
    }
  }
  return [...new Set(values)];
}

/** The names this bundle will write, to check the directory before anything is enrolled. */
export function bundleNames(withKey: boolean): string[] {
  const names: string[] = [DEVICE_FILES.certificate, DEVICE_FILES.ca, DEVICE_FILES.gatewayCa, DEVICE_FILES.config];
  return withKey ? [DEVICE_FILES.key, ...names] : names;
}

export function prepareBundleDir(dir: string, withKey: boolean): void {
  prepareOutputDir(dir, bundleNames(withKey));
}

/** Writes the bundle; returns the paths written. The private key alone is 0600. */
export function writeDeviceBundle(dir: string, enrolled: EnrollmentAnswer, registries: string[], privateKeyPem?: string): Record<string, string> {
  const written: Record<string, string> = {};
  const write = (what: string, name: string, content: string, mode: number) => {
    const path = join(dir, name);
    writeNewFile(path, content.endsWith('\n') ? content : `${content}\n`, mode);
    written[what] = path;
  };
  if (privateKeyPem !== undefined) write('privateKey', DEVICE_FILES.key, privateKeyPem, 0o600);
  write('certificate', DEVICE_FILES.certificate, enrolled.certificate, 0o644);
  write('ca', DEVICE_FILES.ca, enrolled.caCertificate, 0o644);
  write('gatewayCa', DEVICE_FILES.gatewayCa, enrolled.gatewayCa, 0o644);
  const config: DeviceConfig = {
    gateway: enrolled.gateway,
    certificate: DEVICE_FILES.certificate,
    privateKey: DEVICE_FILES.key,
    caBundle: DEVICE_FILES.gatewayCa,
    registries,
  };
  write('config', DEVICE_FILES.config, `${JSON.stringify(config, null, 2)}\n`, 0o644);
  return written;
}
