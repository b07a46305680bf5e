// Builds the web console (Vite) into dist/console, unless nothing it is built from changed since
// the last build: `npm start` then skips the bundling (as `tsc -b` skips unchanged TypeScript).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'dist', 'console', 'index.html');

/** The newest modification time of `path` and everything below it. */
function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((max, name) => (name === 'node_modules' ? max : Math.max(max, newest(join(path, name)))), st.mtimeMs);
}

let built = 0;
try {
  built = statSync(output).mtimeMs;
} catch {
  // Never built.
}
const inputs = Math.max(newest(join(root, 'console')), newest(join(root, 'package-lock.json')));
if (built > inputs) process.exit(0);
const vite = spawnSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'console', 'vite.config.ts')], { stdio: 'inherit', cwd: root });
process.exit(vite.status ?? 1);
