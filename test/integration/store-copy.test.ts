import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFactory, enrollFromCsr } from '../../shared/authority/index.js';
import { generateKekText, loadKek } from '../../shared/kek.js';
import { writeFileAtomic } from '../../shared/files.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { hashSecret } from '../../shared/secrets.js';
import { SealedKeyStore } from '../../shared/sealed-keystore.js';
import { PostgresStore } from '../../shared/store/index.js';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { createTestAuthority, OPERATOR, type TestAuthority } from '../support/store.js';
import { CLI } from '../support/topology.js';

/**
 * Moving up: a running SQLite installation (file keys) copied into PostgreSQL with the CLI, then
 * used there: its devices, tokens and audit trail are all there, and its CA and signing keys,
 * now sealed in the database, still sign.
 */
describe.skipIf(!postgresAvailable)('tollgate store copy, SQLite to PostgreSQL', () => {
  let t: TestAuthority;
  let target: string;
  let kekFile: string;
  let deviceSecret: string;
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args, '--config', join(t.dir, 'tollgate.yml')], { encoding: 'utf8', timeout: 120_000 });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    t = await createTestAuthority();
    const acme = await t.factory('acme');
    await t.signingKey();
    const d = await t.device(acme);
    deviceSecret = (await t.deviceToken(d)).secret;
    await t.apiToken(acme, ['devices:read']);
    await createFactory(t.deps, OPERATOR, 'other');
    kekFile = join(t.dir, 'kek');
    writeFileAtomic(kekFile, generateKekText(), 0o600);
    target = await createTestDatabase();
  });
  afterAll(() => t?.cleanup());

  it('copies every record and key, counts them on both sides, and refuses to copy twice', async () => {
    const from = t.config.databasePath;
    const copied = run(['store', 'copy', '--from', from, '--to', target, '--kek-file', kekFile, '--json']);
    expect(copied.status, copied.stderr).toBe(0);
    const report = JSON.parse(copied.stdout) as { counts: Record<string, number>; keys: number; to: string };
    expect(report.counts).toMatchObject({ factories: 2, device_cas: 1, devices: 1, signing_keys: 1 });
    expect(report.counts.api_tokens).toBe(2);
    expect(report.counts.audit_log).toBeGreaterThanOrEqual(6);
    // CA key, signing key and the development gateway CA (none here: no gateway ran).
    expect(report.keys).toBe(2);
    expect(report.to).not.toContain('password');

    const again = run(['store', 'copy', '--from', from, '--to', target, '--kek-file', kekFile]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/the target store is not empty .*\(store_not_empty\)/);
  });

  it('works on the copy: tokens authenticate, the sealed CA key signs, the audit trail goes on after its last id', async () => {
    const pgStore = new PostgresStore(target, { poolSize: 2 });
    try {
      const deps = { ...t.deps, store: pgStore, keys: new SealedKeyStore(pgStore, loadKek(kekFile)) };
      expect(await pgStore.findTokenBySecretHash(hashSecret(deviceSecret))).toMatchObject({ kind: 'device', deviceState: 'active', factoryName: 'acme' });
      const sourceAudit = await t.deps.store.listAudit({ limit: 1000 });
      const copiedAudit = await pgStore.listAudit({ limit: 1000 });
      expect(copiedAudit.slice(0, sourceAudit.length)).toEqual(sourceAudit);
      expect(copiedAudit.at(-1)).toMatchObject({ action: 'store.copied', actor: 'operator' });
      // The online CA's key, a file on the SQLite host, is now sealed in PostgreSQL and signs.
      const acme = (await pgStore.getFactoryByName('acme'))!;
      const pair = generateKeyPair('ec-p256');
      const uuid = '0b1d3c9e-4a57-4f0e-9d2b-6c8e1f7a3b52';
      const csrPem = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'acme' }, ...pair });
      const enrolled = await enrollFromCsr(deps, OPERATOR, acme, { csrPem });
      expect(enrolled.device.uuid).toBe(uuid);
      const last = await pgStore.listAudit({ limit: 1000 });
      expect(last.at(-1)!.id).toBeGreaterThan(sourceAudit.at(-1)!.id);
    } finally {
      await pgStore.close();
    }
  });

  it('refuses a copy without a key-encryption key, and a source that is not there, with exit 2', () => {
    const noKek = run(['store', 'copy', '--from', t.config.databasePath, '--to', target]);
    expect([noKek.status, noKek.stderr]).toEqual([2, expect.stringMatching(/\(kek_missing\)\n$/)]);
    const noSource = run(['store', 'copy', '--from', join(t.dir, 'nope.db'), '--to', target, '--kek-file', kekFile]);
    expect([noSource.status, noSource.stderr]).toEqual([2, expect.stringMatching(/\(store_missing\)\n$/)]);
  });
});
