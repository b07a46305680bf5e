import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../shared/config.js';
import { realBinaries } from '../support/binaries.js';

/**
 * docker-compose.yml is the fleet shape: PostgreSQL and two instances of each Tollgate service on
 * it. No Docker engine runs here, so the file is checked by docker-compose itself and its Tollgate
 * environment by Tollgate's own configuration loader.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
const FILE = join(ROOT, 'docker-compose.yml');
const tools = realBinaries(['docker-compose']);

interface Service {
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }>;
}

describe.skipIf(!tools.available)('docker-compose.yml', () => {
  const resolved = () => {
    const r = spawnSync('docker-compose', ['-f', FILE, 'config'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return parse(r.stdout) as { services: Record<string, Service> };
  };

  it('runs two instances of the gateway and of the realm on one PostgreSQL, after init', () => {
    const { services } = resolved();
    expect(Object.keys(services).sort()).toEqual(['authsvc', 'gateway', 'init', 'postgres', 'registry']);
    for (const name of ['gateway', 'authsvc']) {
      expect(services[name]!.deploy?.replicas, name).toBe(2);
      expect(services[name]!.depends_on?.init?.condition).toBe('service_completed_successfully');
    }
    expect(services.init!.depends_on?.postgres?.condition).toBe('service_healthy');
  });

  it('gives every Tollgate service a configuration Tollgate accepts: PostgreSQL with a key-encryption key', () => {
    const { services } = resolved();
    for (const name of ['init', 'gateway', 'authsvc']) {
      const config = loadConfig({ env: services[name]!.environment ?? {}, cwd: ROOT });
      expect(config.store.type, name).toBe('postgres');
      expect(config.store.url).toMatch(/^postgres:\/\/tollgate@postgres:5432\//);
      expect(config.store.keyEncryptionKeyFile).toBe('/run/tollgate/kek/kek');
    }
  });
});
