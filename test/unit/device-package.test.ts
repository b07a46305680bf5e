import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The device package (device/) is built from the same sources as the server's; it must also
 * install the same dependency versions the server's tests ran with, and carry the same version.
 */
const root = join(import.meta.dirname, '..', '..');
const read = <T>(file: string): T => JSON.parse(readFileSync(join(root, file), 'utf8')) as T;

describe('the device package', () => {
  const pkg = read<{ version: string; dependencies: Record<string, string> }>('package.json');
  const device = read<{ version: string; dependencies: Record<string, string> }>('device/package.json');

  it('has the version of the whole and asks for dependencies in the same ranges', () => {
    expect(device.version).toBe(pkg.version);
    for (const [name, range] of Object.entries(device.dependencies)) expect([name, range]).toEqual([name, pkg.dependencies[name]]);
  });

  it('pins, in its shrinkwrap, exactly the versions the lockfile of the whole has', () => {
    const shrinkwrap = read<{ packages: Record<string, { version?: string; integrity?: string }> }>('device/npm-shrinkwrap.json');
    const lock = read<{ packages: Record<string, { version?: string; integrity?: string }> }>('package-lock.json');
    const pinned = Object.entries(shrinkwrap.packages).filter(([path]) => path !== '');
    expect(pinned.length).toBeGreaterThan(0);
    for (const [path, entry] of pinned) expect([path, entry.version, entry.integrity]).toEqual([path, lock.packages[path]?.version, lock.packages[path]?.integrity]);
  });
});
