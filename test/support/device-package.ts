import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './topology.js';

/**
 * The device package as a device gets it: `npm pack` of device/ (which builds it), then an npm
 * install of that tarball alone into an empty directory, with nothing of the server around.
 */
export interface InstalledDevicePackage {
  /** node_modules/.bin of the install: `docker-credential-tollgate` and `tollgate`. */
  binDir: string;
  /** Every package the install holds, by name. */
  packages: string[];
  tarball: string;
}

export function installDevicePackage(dir: string): InstalledDevicePackage {
  const packDir = join(dir, 'pack');
  const installDir = join(dir, 'install');
  mkdirSync(packDir, { recursive: true });
  mkdirSync(installDir, { recursive: true });
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: join(ROOT, 'device'), encoding: 'utf8' });
  const tarball = join(packDir, packed.trim().split('\n').pop() as string);
  writeFileSync(join(installDir, 'package.json'), JSON.stringify({ name: 'a-device', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', '--prefer-offline', tarball], { cwd: installDir, encoding: 'utf8' });
  const listed = execFileSync('npm', ['ls', '--all', '--parseable'], { cwd: installDir, encoding: 'utf8' });
  const packages = listed
    .split('\n')
    .filter((line) => line.includes('node_modules'))
    .map((line) => line.slice(line.lastIndexOf('node_modules/') + 'node_modules/'.length));
  return { binDir: join(installDir, 'node_modules', '.bin'), packages: [...new Set(packages)].sort(), tarball };
}
