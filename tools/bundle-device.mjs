// Builds the device side as bundles: `docker-credential-tollgate` and the device's `tollgate device
// renew`, each an entry file that holds everything a call usually runs, plus chunks loaded only
// when a call needs them (a token to fetch, a renewal due, a config to refuse). The credential
// helper starts once per image a client pulls; one file instead of a dozen modules to resolve and
// link is measurably faster there (bench/, suite device). Dependencies stay packages of their own
// (node_modules), imported only by the chunks that use them.
//
//   node tools/bundle-device.mjs <out dir>
import { build } from 'esbuild';
import { NODE_BUNDLE } from './node-bundle.mjs';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entries = { 'docker-credential-tollgate': 'helper/main.ts', tollgate: 'helper/device-cli.ts' };

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node tools/bundle-device.mjs <out dir>\n');
  process.exit(2);
}
const outDir = resolve(out);
rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: entries,
  outdir: outDir,
  ...NODE_BUNDLE,
  packages: 'external',
});
for (const name of Object.keys(entries)) chmodSync(join(outDir, `${name}.js`), 0o755);
