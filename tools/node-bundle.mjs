// What every bundle Tollgate ships has in common (tools/bundle-cli.mjs, tools/bundle-device.mjs):
// ES modules for the oldest Node it supports, split into an entry file and chunks that are loaded
// only when the code that imports them runs.
export const NODE_BUNDLE = {
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  logLevel: 'warning',
};
