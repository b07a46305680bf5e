import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The device side's own package (device/package.json): the helper and renewal without the server. */
export const DEVICE_PACKAGE = 'tollgate-device';

/**
 * The package version, read from the package.json next to the installed code: dist/helper/*.js is
 * two levels below it, helper/*.ts (run from source) one. Walking up covers both.
 */
export function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if ((pkg.name === 'tollgate' || pkg.name === DEVICE_PACKAGE) && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No (readable) package.json at this level: keep looking further up.
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}
