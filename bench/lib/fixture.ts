import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createFactory, createOnlineCa, createSigningKey, enrollFromCsr, mintDeviceToken } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import { writeFileAtomic } from '../../shared/files.js';
import { generateKekText } from '../../shared/kek.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';

/**
 * A benchmark store: a temp directory with a config file, a store (a SQLite file, or a PostgreSQL
 * database with the keys sealed in it), a signing key, one factory with an online CA, one
 * enrolled device and a device token. Built only through the
 * authority functions so the rows are exactly what production writes.
 *
 * Request limits are turned off: the benchmarks hammer one device from one address, which the
 * limits would (rightly) answer with 429s, and the figure wanted is the cost of the real work.
 */

export const BENCH_FACTORY = 'bench';

export interface Fixture {
  dir: string;
  configFile: string;
  /** The SQLite file (unused on PostgreSQL). */
  databasePath: string;
  /** The PostgreSQL database, when the store is there. */
  postgresUrl: string | null;
  factoryId: string;
  caId: string;
  device: { uuid: string; certPem: string; keyPem: string; caPem: string };
  /** A device token as /hub-creds/ hands it out. */
  token: { username: string; secret: string };
  /** Gateway server certificate (the development PKI, generated into the temp dir). */
  tls: { certPem: string; keyPem: string; caPem: string };
  /** Service/issuer the realm is configured with. */
  service: string;
  issuer: string;
  cleanup(): void;
}

export interface FixtureOptions {
  /** Device token lifetime (seconds) for tokens the gateway mints. */
  tokenTtlSeconds?: number;
  /** Purge interval of authsvc (seconds); 0 turns its own purge off. */
  purgeIntervalSeconds?: number;
  /** A PostgreSQL database: the store, instead of a SQLite file. */
  postgresUrl?: string;
}

export async function createFixture(options: FixtureOptions = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const configFile = join(dir, 'tollgate.yml');
  const service = 'tollgate-registry';
  const issuer = 'tollgate';
  writeFileSync(
    configFile,
    stringify({
      dataDir: 'data',
      pkiDir: 'certs',
      // The services run on the development PKI generated here.
      development: true,
      // Production's default: the measured servers write their request lines (to a file, see proc.ts).
      log: { level: 'info' },
      gateway: { listen: { host: '127.0.0.1', port: 0 }, tokenTtlSeconds: options.tokenTtlSeconds ?? 3600 },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
      authsvc: { listen: { host: '127.0.0.1', port: 0 }, service, issuer },
      limits: { enabled: false },
      maintenance: { purgeIntervalSeconds: options.purgeIntervalSeconds ?? 0 },
      ...(options.postgresUrl ? { store: { type: 'postgres', url: options.postgresUrl, keyEncryptionKeyFile: 'kek' } } : {}),
    }),
  );
  if (options.postgresUrl) writeFileAtomic(join(dir, 'kek'), generateKekText(), 0o600);
  const config = loadConfig({ file: configFile, env: {} });
  const deps = openAuthority(config);
  const actor = { actor: 'operator', source: null };
  await createSigningKey(deps, actor, { activate: true });
  const factory = await createFactory(deps, actor, BENCH_FACTORY);
  const ca = await createOnlineCa(deps, actor, factory);
  const uuid = randomUUID();
  const pair = generateKeyPair('ec-p256');
  const csrPem = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory.name }, ...pair });
  const enrolled = await enrollFromCsr(deps, actor, factory, { csrPem });
  const view = await deps.store.getDevice(uuid);
  if (!view) throw new Error(`device ${uuid} was not enrolled`);
  const minted = await mintDeviceToken(deps, view, '127.0.0.1');
  const tls = await developmentGatewayTls(config, undefined, deps.keys);
  const databasePath = config.databasePath;
  await deps.store.close();
  return {
    dir,
    configFile,
    databasePath,
    postgresUrl: options.postgresUrl ?? null,
    factoryId: factory.id,
    caId: ca.id,
    device: { uuid, certPem: enrolled.certificatePem, keyPem: pair.privateKeyPem, caPem: enrolled.caCertificatePem },
    token: { username: minted.username, secret: minted.secret },
    tls: { certPem: tls.certPem, keyPem: tls.keyPem, caPem: tls.caPem },
    service,
    issuer,
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
