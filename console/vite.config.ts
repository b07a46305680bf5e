import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console: Preact, bundled by Vite into dist/console, which the admin listener serves at /.
 * No CDN, no inline script (the Content-Security-Policy forbids it), one small JS and one CSS file.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill would be the only inline-able code; every supported browser preloads modules itself.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
