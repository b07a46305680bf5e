import { spawnSync } from 'node:child_process';

export const INSTALL_HINT = 'apt-get install -y docker-registry skopeo chromium';

export function onPath(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Whether the real third-party binaries a suite drives are here. In CI a missing one is a failure,
 * never a skip; elsewhere the suite is reported skipped with the command that installs them.
 */
export function realBinaries(names: readonly string[]): { available: boolean; missing: string[] } {
  const missing = names.filter((n) => !onPath(n));
  if (missing.length > 0 && process.env.CI) {
    throw new Error(`CI must run the end-to-end suites, but ${missing.join(', ')} is missing: ${INSTALL_HINT}`);
  }
  if (missing.length > 0) {
    console.warn(`skipping: ${missing.join(', ')} not installed (${INSTALL_HINT})`);
  }
  return { available: missing.length === 0, missing };
}
