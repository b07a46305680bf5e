// Builds `tollgate` (dist/cli/main.js, the services included) as one entry file plus chunks that
// hold Tollgate's modules and its pure-JavaScript dependencies. A process that starts from the
// compiled modules resolves, reads and links some 160 of Tollgate's files and 430 of its packages'
// (yaml alone has 70, prom-client 30, express and body-parser with theirs 60) before it listens:
// about a third of `tollgate up`'s start-up (bench/, suite services). Commands still load only their own
// code: cli/main.ts imports each command's module when it runs, and each import is a chunk.
//
// Packages with native addons (better-sqlite3, argon2) and pg (whose native binding is optional)
// stay packages, required at run time from node_modules. The tsc output stays beside the bundle:
// the benchmarks import the services from it.
//
//   node tools/bundle-cli.mjs
import { build } from 'esbuild';
import { NODE_BUNDLE } from './node-bundle.mjs';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'cli');
rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'cli/main.ts' },
  outdir: outDir,
  ...NODE_BUNDLE,
  external: ['better-sqlite3', 'argon2', 'pg', 'pg-native'],
  // The CommonJS packages bundled into ESM call require() for Node's modules and the external
  // packages; esbuild's shim uses a `require` in scope when there is one.
  banner: { js: "import { createRequire as __tollgateRequire } from 'node:module';\nconst require = __tollgateRequire(import.meta.url);" },
});
chmodSync(join(outDir, 'main.js'), 0o755);
