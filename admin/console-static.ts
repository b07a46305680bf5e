import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Request, RequestHandler, Response } from 'express';

/**
 * The console's built files (`npm run build` writes them to dist/console), served by the admin
 * listener at / from memory: a few files of a few dozen KiB, read once at start-up. A GET of one of
 * the console's pages answers index.html, so deep links work; any other path is 404.
 */

/** The console's pages (console/src/main.tsx routes them in the browser). */
const PAGES = /^\/(?:|signin|devices|devices\/[0-9a-f-]{36}|enroll|cas|tokens|audit|settings)$/;

/**
 * Where the build puts the console (dist/console), seen from this module: in dist/admin (compiled),
 * in dist/cli/chunks (the CLI's bundle) or in admin/ (the source tree).
 */
export function defaultConsoleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const dist = [here, dirname(here), dirname(dirname(here))].find((dir) => basename(dir) === 'dist');
  return dist !== undefined ? join(dist, 'console') : join(resolve(here, '..'), 'dist', 'console');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * Strict, and no inline script anywhere: every script and style is a file of this origin. The
 * console talks only to its own origin (connect-src 'self'); it may not be framed.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  /** Hashed file names never change content: cache them for good. */
  immutable: boolean;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
      else assets.set(`/${prefix}${name}`, { body: readFileSync(full), type: TYPES[extname(name)] ?? 'application/octet-stream', immutable: prefix.startsWith('assets/') });
    }
  };
  walk(dir, '');
  return assets;
}

function send(res: Response, asset: Asset): void {
  res.set('Content-Type', asset.type);
  res.set('Cache-Control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  res.send(asset.body);
}

/** Serves the console, or answers 503 with how to build it when dist/console is missing. */
export function consoleHandler(dir: string = defaultConsoleDir()): RequestHandler {
  const assets = existsSync(join(dir, 'index.html')) ? load(dir) : null;
  return (req: Request, res: Response, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const page = PAGES.test(req.path);
    if (!assets) {
      if (!page) return next();
      res.status(503).type('text/plain').send('The console is not built: run npm run build.\n');
      return;
    }
    const asset = assets.get(req.path);
    if (asset && req.path !== '/index.html') return send(res, asset);
    // A console page: the app routes it in the browser.
    if (page) return send(res, assets.get('/index.html')!);
    next();
  };
}
