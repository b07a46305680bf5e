import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { onPath } from '../support/binaries.js';
import { ROOT } from '../support/topology.js';

/**
 * What operators install: the systemd units, the container image and compose file, and the npm
 * package. Each is checked by the tool that would reject it.
 */

function required(name: string, hint: string): void {
  if (!onPath(name)) throw new Error(`${name} is needed to check the packaging (${hint})`);
}

const scratch = mkdtempSync(join(tmpdir(), 'tollgate-packaging-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('packaging', () => {
  it('the systemd units pass systemd-analyze verify', () => {
    required('systemd-analyze', 'apt-get install -y systemd');
    const dir = join(ROOT, 'packaging', 'systemd');
    const units = readdirSync(dir).filter((f) => /\.(service|timer)$/.test(f));
    expect(units.sort()).toEqual(['tollgate-authsvc.service', 'tollgate-device-renew.service', 'tollgate-device-renew.timer', 'tollgate-gateway.service']);
    // The units name `tollgate` as an installed package puts it on systemd's search path; here the
    // same units run this checkout's program, which verify requires to exist and be executable.
    for (const unit of units) {
      const text = readFileSync(join(dir, unit), 'utf8');
      if (unit.endsWith('.service')) expect(text).toMatch(/^ExecStart=tollgate (serve gateway|serve authsvc|device renew --device-config \S+)$/m);
      writeFileSync(join(scratch, unit), text.replace(/^ExecStart=tollgate /m, `ExecStart=${join(ROOT, 'bin', 'tollgate')} `));
    }
    const r = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(scratch, u))], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });

  it('the image and the compose file run the production services with health checks', () => {
    required('docker-compose', 'apt-get install -y docker-compose');
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^CMD \["serve", "gateway"\]$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["node", "\/app\/dist\/cli\/main\.js", "ready", "gateway", "admin"\]$/m);
    expect(dockerfile).not.toMatch(/CMD \["up"\]/);
    const r = spawnSync('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), 'config'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const compose = parseYaml(r.stdout) as { services: Record<string, { command?: string[]; healthcheck?: { test: string[] } }> };
    expect(compose.services.gateway).toMatchObject({ command: ['serve', 'gateway'], healthcheck: { test: ['CMD', 'node', '/app/dist/cli/main.js', 'ready', 'gateway', 'admin'] } });
    expect(compose.services.authsvc).toMatchObject({ command: ['serve', 'authsvc'], healthcheck: { test: ['CMD', 'node', '/app/dist/cli/main.js', 'ready', 'authsvc'] } });
  });

  it('the npm package carries the programs and no tests, benchmarks or source maps', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/cli/main.js', 'dist/device/docker-credential-tollgate.js', 'packaging/systemd/tollgate-gateway.service']));
    expect(files.filter((f) => /(^|\/)(test|bench|tools)\/|\.map$|\.tsbuildinfo$|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: unknown; bin: Record<string, string> };
    expect(pkg.exports).toEqual({ './package.json': './package.json' });
    for (const bin of Object.values(pkg.bin)) expect(files).toContain(bin);
  });
});
