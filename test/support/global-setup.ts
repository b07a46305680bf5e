import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

/**
 * Several suites run the compiled programs (the CLI, the credential helper, the console served by
 * the admin listener) as real processes. Build them once, before any suite starts, so no suite
 * rebuilds dist/ while another runs it. Types are checked separately (`npm test` runs tsc --noEmit
 * first), so emit skips the check.
 */
export default function setup(): void {
  const root = resolve(import.meta.dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--noCheck'], {
    cwd: root,
    stdio: 'inherit',
  });
  // The console as `npm run build` makes it: vitest's NODE_ENV=test would give a development bundle.
  execFileSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'console', 'vite.config.ts')], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  // The device side as it ships (package.json bin, the device package): the bundles.
  execFileSync(process.execPath, [join(root, 'tools', 'bundle-device.mjs'), join(root, 'dist', 'device')], { cwd: root, stdio: 'inherit' });
}
