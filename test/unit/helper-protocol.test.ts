import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheDirCandidates, isFresh } from '../../helper/cache.js';
import { CREDENTIALS_NOT_FOUND, registryHost } from '../../helper/protocol.js';
import { runHelper } from '../../helper/run.js';

const pkgVersion = (await import('../../package.json', { with: { type: 'json' } })).default.version;

describe('registryHost', () => {
  it.each([
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['  127.0.0.1:5000\n', '127.0.0.1:5000'],
    ['https://127.0.0.1:5000', '127.0.0.1:5000'],
    ['https://127.0.0.1:5000/v2/', '127.0.0.1:5000'],
    ['http://127.0.0.1:5000/v2/library/alpine?x=1#y', '127.0.0.1:5000'],
    ['HUB.Example.COM', 'hub.example.com'],
    ['https://user:pw@hub.example.com/v2/', 'hub.example.com'],
    ['hub.example.com:443', 'hub.example.com:443'],
    ['[::1]:5000', '[::1]:5000'],
    ['https://[::1]:5000/v2/', '[::1]:5000'],
    ['localhost', 'localhost'],
    ['127.0.0.1:05000', '127.0.0.1:5000'],
  ])('%j -> %s', (input, expected) => {
    expect(registryHost(input)).toBe(expected);
  });

  it.each(['', '   ', 'https://', 'host:0', 'host:70000', 'bad host', 'a..b', '::1', '-x.example.com'])('refuses %j', (input) => {
    expect(registryHost(input)).toBeUndefined();
  });
});

describe('expiry margin', () => {
  const t0 = 1_000_000_000_000;
  it('is 60 s for short tokens', () => {
    const entry = { username: 'u', secret: 's', expiresAt: t0 + 300_000, lifetimeMs: 300_000 };
    expect(isFresh(entry, t0 + 239_000)).toBe(true);
    expect(isFresh(entry, t0 + 240_000)).toBe(false);
  });
  it('is 10% of the lifetime for long tokens', () => {
    const entry = { username: 'u', secret: 's', expiresAt: t0 + 3_600_000, lifetimeMs: 3_600_000 };
    expect(isFresh(entry, t0 + 3_239_000)).toBe(true);
    expect(isFresh(entry, t0 + 3_240_000)).toBe(false);
  });
  it('never reuses a token that lives less than the margin', () => {
    expect(isFresh({ username: 'u', secret: 's', expiresAt: t0 + 30_000, lifetimeMs: 30_000 }, t0)).toBe(false);
  });
});

describe('cache directory choice', () => {
  const tmpFallback = (c: { dir: string }[]) => c[c.length - 1]?.dir ?? '';
  it('prefers TOLLGATE_CACHE_DIR', () => {
    const c = cacheDirCandidates({ TOLLGATE_CACHE_DIR: '/srv/cache', XDG_CACHE_HOME: '/x', HOME: '/home/d' });
    expect(c[0]?.dir).toBe('/srv/cache');
    expect(c.map((x) => x.dir)).not.toContain('/x/tollgate');
  });
  it('then $XDG_CACHE_HOME/tollgate, then ~/.cache/tollgate, then a per-user temp dir', () => {
    const c = cacheDirCandidates({ XDG_CACHE_HOME: '/x', HOME: '/home/d' });
    expect(c.map((x) => x.dir).slice(0, 2)).toEqual(['/x/tollgate', '/home/d/.cache/tollgate']);
    expect(path.dirname(tmpFallback(c))).toBe(os.tmpdir());
    expect(path.basename(tmpFallback(c))).toMatch(/^tollgate-cache-/);
  });
  it('ignores a relative XDG_CACHE_HOME and an unusable HOME', () => {
    const c = cacheDirCandidates({ XDG_CACHE_HOME: 'relative', HOME: '/' });
    expect(c).toHaveLength(1);
    expect(c[0]?.shared).toBe(true);
  });
});

describe('protocol edges', () => {
  const env = { TOLLGATE_DEVICE_CONFIG: '/nonexistent/device.json' };

  it('prints usage on stdout with exit 1 without or with an unknown argument', async () => {
    for (const args of [[], ['fetch'], ['get', 'extra']]) {
      const r = await runHelper(args, '', env);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toMatch(/^Usage: docker-credential-tollgate <get\|store\|erase\|list\|version>\n$/);
    }
  });

  it('version prints the package version', async () => {
    const r = await runHelper(['version'], '', env);
    expect(r).toEqual({ stdout: `docker-credential-tollgate ${pkgVersion}\n`, exitCode: 0 });
  });

  it('store accepts and ignores its input', async () => {
    const r = await runHelper(['store'], JSON.stringify({ ServerURL: '127.0.0.1:5000', Username: 'u', Secret: 's' }), env);
    expect(r).toEqual({ stdout: '', exitCode: 0 });
  });

  it('refuses stdin over 64 KiB', async () => {
    for (const action of ['get', 'store', 'erase']) {
      const r = await runHelper([action], 'a'.repeat(64 * 1024 + 1), env);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('tollgate: input on stdin is larger than 64 KiB; expected a registry server URL\n');
    }
  });

  it('get and erase want a server URL', async () => {
    const r = await runHelper(['get'], ' \n', env);
    expect(r).toEqual({ stdout: 'tollgate: no server URL on stdin\n', exitCode: 1 });
  });

  it('the not-found message is exactly what clients look for', () => {
    expect(CREDENTIALS_NOT_FOUND).toBe('credentials not found in native keychain');
  });
});
