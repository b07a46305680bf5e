import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TollgateError } from '../../shared/errors.js';
import { loadConfig } from '../../shared/config.js';
import { CLI } from '../support/topology.js';

/**
 * Every way a configuration can be wrong, each with its stable code, and the operational sections
 * (`limits`, `maintenance`) with their defaults; then `tollgate config check` as operators run it.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-ops-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function codeOf(load: () => unknown): string {
  try {
    load();
  } catch (e) {
    if (e instanceof TollgateError) return e.code;
    throw e;
  }
  throw new Error('the configuration was accepted');
}

describe('configuration errors and their codes', () => {
  it.each([
    ['a missing file', () => join(dir, 'missing.yml'), 'config_unreadable'],
    ['an oversized file', () => file('big.yml', '#'.repeat(300_000)), 'config_too_large'],
    ['broken YAML', () => file('bad.yml', 'limits: [\n'), 'config_syntax'],
    ['broken JSON', () => file('bad.json', '{"limits": '), 'config_syntax'],
    ['a scalar at the top', () => file('scalar.yml', '42\n'), 'config_syntax'],
    ['an unknown key', () => file('unknown.yml', 'limit:\n  enabled: true\n'), 'config_invalid'],
  ])('refuses %s', (_what, path, code) => {
    const p = path();
    expect(codeOf(() => loadConfig({ file: p, env: {} }))).toBe(code);
  });

  it('names the variable when an environment override is wrong', () => {
    const load = () => loadConfig({ env: { TOLLGATE_LIMITS_ENABLED: 'yes' }, cwd: dir });
    expect(codeOf(load)).toBe('config_invalid');
    expect(load).toThrow(/environment TOLLGATE_LIMITS_ENABLED: limits\.enabled/);
  });
});

describe('limits and maintenance', () => {
  it('defaults to limits that let a device burst and a purge every five minutes', () => {
    const c = loadConfig({ env: {}, cwd: dir });
    expect(c.limits.enabled).toBe(true);
    expect(c.limits.perDevice.burst).toBeGreaterThanOrEqual(30);
    expect(c.limits.perSource.burst).toBeGreaterThanOrEqual(c.limits.perDevice.burst);
    expect(c.limits.failures).toEqual({ threshold: 20, windowSeconds: 60, blockSeconds: 1, maxBlockSeconds: 300 });
    expect(c.maintenance.purgeIntervalSeconds).toBe(300);
  });

  it('takes overrides from the file and the environment', () => {
    const c = loadConfig({
      file: file('t.yml', 'limits:\n  perDevice:\n    burst: 100\nmaintenance:\n  purgeIntervalSeconds: 0\n'),
      env: { TOLLGATE_LIMITS_FAILURES_THRESHOLD: '5', TOLLGATE_LIMITS_PER_SOURCE_PER_SECOND: '2.5' },
    });
    expect(c.limits.perDevice).toEqual({ burst: 100, perSecond: 10 });
    expect(c.limits.perSource.perSecond).toBe(2.5);
    expect(c.limits.failures.threshold).toBe(5);
    expect(c.maintenance.purgeIntervalSeconds).toBe(0);
  });

  it.each([
    ['a burst of zero', 'limits:\n  perDevice:\n    burst: 0\n', /limits\.perDevice\.burst/],
    ['a fractional burst', 'limits:\n  perSource:\n    burst: 1.5\n', /limits\.perSource\.burst/],
    ['a zero refill rate', 'limits:\n  perDevice:\n    perSecond: 0\n', /limits\.perDevice\.perSecond/],
    ['a first block longer than the cap', 'limits:\n  failures:\n    blockSeconds: 600\n    maxBlockSeconds: 60\n', /blockSeconds must not exceed maxBlockSeconds/],
    ['an unknown limits key', 'limits:\n  perIp: {}\n', /perIp/],
    ['a negative purge interval', 'maintenance:\n  purgeIntervalSeconds: -1\n', /maintenance\.purgeIntervalSeconds/],
  ])('refuses %s, naming the key', (_what, content, message) => {
    const p = file('bad.yml', content);
    expect(() => loadConfig({ file: p, env: {} })).toThrow(message);
  });
});

describe('tollgate config check', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, ...env } });

  it('prints the effective configuration and exits 0 when valid', () => {
    const p = file('ok.yml', 'limits:\n  perDevice:\n    burst: 80\n');
    const r = run(['config', 'check', '--json'], { TOLLGATE_CONFIG: p });
    expect(r.status, r.stderr).toBe(0);
    const effective = JSON.parse(r.stdout) as { limits: { perDevice: { burst: number } } };
    expect(effective.limits.perDevice.burst).toBe(80);
  });

  it('exits 2 listing every invalid key', () => {
    const p = file('bad.yml', 'limits:\n  perDevice:\n    burst: 0\nmaintenance:\n  purgeIntervalSeconds: -5\n');
    const r = run(['config', 'check'], { TOLLGATE_CONFIG: p });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/limits\.perDevice\.burst/);
    expect(r.stderr).toMatch(/maintenance\.purgeIntervalSeconds/);
  });
});
