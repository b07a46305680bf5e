import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKekText, loadKek, seal, unseal, type Kek } from '../../shared/kek.js';
import { SealedKeyStore } from '../../shared/sealed-keystore.js';
import type { SqlStore, StoreLocation } from '../../shared/store/index.js';
import { INSTALLED_ENGINES, type EngineUnderTest } from '../support/engines.js';

/**
 * Private keys in the database, sealed with a key-encryption key (AES-256-GCM, the row's reference
 * as associated data), on both engines: what the database holds opens only with the KEK and only
 * as the row it was sealed for, and a KEK rotation re-seals every key without a moment in which a
 * running instance cannot open one.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-kek-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function kekFile(name: string, text = generateKekText()): string {
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
const operator = { actor: 'operator', source: null };

describe('key-encryption key', () => {
  it('reads 256 bits as base64 or hex, and refuses anything else naming the file', () => {
    const a = loadKek(kekFile('a'));
    expect(a.key).toHaveLength(32);
    expect(loadKek(kekFile('hex', `${a.key.toString('hex')}\n`)).id).toBe(a.id);
    expect(() => loadKek(kekFile('short', 'c2hvcnQ=\n'))).toThrow(/does not hold a 256-bit key-encryption key/);
    expect(() => loadKek(join(dir, 'missing'))).toThrow(/cannot read the key-encryption key file .*missing/);
  });

  it('seals with a fresh nonce, and opens only with the same KEK for the same row, unaltered', () => {
    const kek = loadKek(kekFile('k'));
    const other = loadKek(kekFile('other'));
    const sealed = seal(kek, 'keys/ca-1.key', PEM);
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(seal(kek, 'keys/ca-1.key', PEM)).not.toBe(sealed);
    expect(unseal(kek, 'keys/ca-1.key', sealed)).toBe(PEM);
    // Moved to another row (a signing key's reference): the associated data no longer matches.
    expect(() => unseal(kek, 'keys/signing-1.key', sealed)).toThrow(/does not open/);
    expect(() => unseal(other, 'keys/ca-1.key', sealed)).toThrow(/does not open/);
    const [v, nonce, ciphertext, tag] = sealed.split('.') as [string, string, string, string];
    const flipped = Buffer.from(ciphertext, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    expect(() => unseal(kek, 'keys/ca-1.key', [v, nonce, flipped.toString('base64url'), tag].join('.'))).toThrow(/does not open/);
  });
});

describe.each(INSTALLED_ENGINES.map((e) => [e.name, e] as const))('sealed keys on %s', (_name, engine: EngineUnderTest) => {
  let location: StoreLocation;
  let store: SqlStore;
  beforeEach(async () => {
    location = await engine.create();
    store = engine.open(location);
  });
  afterEach(async () => {
    await store.close();
    void engine.destroy(location).catch(() => undefined);
  });

  it('keeps only ciphertext in the database, which every instance given the KEK opens', async () => {
    const kek = loadKek(kekFile('k'));
    const ref = await new SealedKeyStore(store, kek).put('ca-1', PEM);
    const raw = await engine.raw(location);
    const stored = await raw.all<{ sealed: string; kek_id: string }>('SELECT sealed, kek_id FROM stored_keys');
    await raw.close();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.sealed).not.toContain('PRIVATE');
    expect(stored[0]!.kek_id).toBe(kek.id);
    // Another instance (another store connection, its own cache) with the same KEK file.
    const other = engine.open(location);
    expect(await new SealedKeyStore(other, loadKek(kekFile('k2', `${kek.key.toString('base64')}\n`))).get(ref)).toBe(PEM);
    await expect(new SealedKeyStore(other, loadKek(kekFile('wrong'))).get(ref)).rejects.toMatchObject({ code: 'kek_missing' });
    await expect(new SealedKeyStore(other, kek).get('keys/none.key')).rejects.toMatchObject({ code: 'key_missing' });
    await other.close();
  });

  it('rotates the KEK: instances given both open every key throughout; after the re-seal the old KEK can go', async () => {
    const old = loadKek(kekFile('old'));
    const next = loadKek(kekFile('new'));
    const before = new SealedKeyStore(store, old);
    const refs = [await before.put('ca-1', PEM), await before.put('signing-1', PEM.replace('MIGH', 'MIGI'))];
    // Step 1: every instance gets the new KEK as current and the old one as previous.
    const during = new SealedKeyStore(store, next, [old]);
    for (const ref of refs) expect(await during.get(ref)).toContain('PRIVATE KEY');
    const added = await during.put('ca-2', PEM); // new keys are sealed with the new KEK at once
    // Step 2: tollgate store rotate-kek.
    expect(await during.rotate(operator)).toEqual({ resealed: 2, unopenable: [] });
    expect(await store.countSealedKeys()).toEqual({ [next.id]: 3 });
    expect((await store.listAudit({ action: 'key.resealed' })).map((r) => r.details)).toEqual([
      { from: old.id, to: next.id },
      { from: old.id, to: next.id },
    ]);
    // Step 3: the old KEK is removed from the configuration; everything still opens.
    const restarted = engine.open(location);
    const after = new SealedKeyStore(restarted, next);
    for (const ref of [...refs, added]) expect(await after.get(ref)).toContain('PRIVATE KEY');
    await restarted.close();
    // A process left with only the old KEK can no longer open anything, and says which KEK it needs.
    await expect(new SealedKeyStore(store, old).get(refs[0]!)).rejects.toMatchObject({ code: 'kek_missing' });
    // Running it again changes nothing.
    expect(await during.rotate(operator)).toEqual({ resealed: 0, unopenable: [] });
  });

  it('reports the keys a rotation could not open (sealed with a KEK it was not given)', async () => {
    const lost: Kek = loadKek(kekFile('lost'));
    await new SealedKeyStore(store, lost).put('orphan', PEM);
    const current = new SealedKeyStore(store, loadKek(kekFile('current')));
    expect(await current.rotate(operator)).toEqual({ resealed: 0, unopenable: ['keys/orphan.key'] });
  });
});
