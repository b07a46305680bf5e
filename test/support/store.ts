import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  createApiToken,
  createFactory,
  createOnlineCa,
  createSigningKey,
  enrollFromCsr,
  mintDeviceToken,
  type Actor,
  type AuthorityDeps,
} from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { DeviceAuthView, Factory, SigningKeyRecord, SqlStore } from '../../shared/store/index.js';

/**
 * A real authority on a real SQLite file in a temporary directory, built only through the
 * authority's own functions, with a clock tests can move.
 */

export const OPERATOR: Actor = { actor: 'operator', source: null };

export interface Credentials {
  username: string;
  secret: string;
}

export interface TestAuthority {
  dir: string;
  config: LoadedConfig;
  deps: AuthorityDeps & { store: SqlStore };
  /** Sets the clock (ms since epoch); null goes back to the real time. */
  setNow(ms: number | null): void;
  factory(name: string): Promise<Factory>;
  /** Enrolls a device of `factory` from a CSR signed by the factory's online CA (created on first use). */
  device(factory: Factory): Promise<DeviceAuthView>;
  /** What /hub-creds/ would hand the device. */
  deviceToken(device: DeviceAuthView): Promise<Credentials & { expiresAt: number }>;
  apiToken(factory: Factory, scopes: string[], days?: number): Promise<Credentials & { id: string }>;
  /** A new token-signing key (ES256 by default), activated unless told otherwise. */
  signingKey(options?: { activate?: boolean; algorithm?: string }): Promise<SigningKeyRecord>;
  cleanup(): void;
}

export interface TestAuthorityOptions {
  /** Extra configuration, merged into the file (e.g. `{ authsvc: { service: 'x' } }`). */
  config?: Record<string, unknown>;
}

export async function createTestAuthority(options: TestAuthorityOptions = {}): Promise<TestAuthority> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-test-'));
  const configFile = join(dir, 'tollgate.yml');
  const extra = options.config ?? {};
  const authsvc = (extra.authsvc as Record<string, unknown> | undefined) ?? {};
  writeFileSync(
    configFile,
    stringify({
      dataDir: 'data',
      pkiDir: 'certs',
      log: { level: 'silent' },
      ...extra,
      authsvc: { listen: { host: '127.0.0.1', port: 0 }, ...authsvc },
    }),
  );
  const config = loadConfig({ file: configFile, env: {} });
  let fixed: number | null = null;
  const deps = openAuthority(config, () => fixed ?? Date.now());
  const onlineCas = new Set<string>();

  return {
    dir,
    config,
    deps,
    setNow(ms) {
      fixed = ms;
    },
    factory: (name) => createFactory(deps, OPERATOR, name),
    async device(factory) {
      if (!onlineCas.has(factory.id)) {
        await createOnlineCa(deps, OPERATOR, factory);
        onlineCas.add(factory.id);
      }
      const uuid = randomUUID();
      const pair = generateKeyPair('ec-p256');
      const csrPem = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory.name }, ...pair });
      await enrollFromCsr(deps, OPERATOR, factory, { csrPem });
      const view = await deps.store.getDevice(uuid);
      if (!view) throw new Error(`device ${uuid} was not enrolled`);
      return view;
    },
    async deviceToken(device) {
      const minted = await mintDeviceToken(deps, device, '127.0.0.1');
      return { username: minted.username, secret: minted.secret, expiresAt: minted.expiresAt };
    },
    async apiToken(factory, scopes, days) {
      const created = await createApiToken(deps, OPERATOR, factory, { scopes, ...(days !== undefined ? { days } : {}) }, 'operator');
      return { username: created.username, secret: created.secret, id: created.token.id };
    },
    signingKey: (o = {}) => createSigningKey(deps, OPERATOR, { activate: o.activate ?? true, ...(o.algorithm ? { algorithm: o.algorithm } : {}) }),
    cleanup() {
      try {
        deps.store.close();
      } catch {
        // already closed by the test
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
