#!/usr/bin/env node
/**
 * Writes a tiny one-layer OCI image layout, so a fresh setup has something to push and pull:
 *   node dist/tools/sample-image.js <dir> [tag]
 * then `skopeo copy oci:<dir>:<tag> docker://<registry>/<factory>/<name>:<tag>`.
 */
import { buildOciLayout } from './oci-layout.js';

const [dir, tag = 'latest'] = process.argv.slice(2);
if (!dir || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
  process.stdout.write('usage: node dist/tools/sample-image.js <dir> [tag]\n');
  process.exit(2);
}
const image = buildOciLayout(dir, tag, `hello from Tollgate, ${new Date().toISOString()}\n`);
process.stdout.write(`wrote oci:${dir}:${tag} (${image.manifestDigest})\n`);
