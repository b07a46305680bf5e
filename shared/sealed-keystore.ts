import { TollgateError } from './errors.js';
import { seal, unseal, type Kek } from './kek.js';
import { keyRefFor, type KeyStore } from './keystore.js';
import type { AuditEntry, Store } from './store/types.js';

type SealedStore = Pick<Store, 'putSealedKey' | 'getSealedKey' | 'deleteSealedKey' | 'sealedKeysNotUnder' | 'resealKey'>;

/**
 * Private keys in the database, sealed with the current key-encryption key; keys sealed with an
 * earlier one (listed for a rotation) still open. Every instance given the KEK can use every key,
 * with no shared disk.
 */
export class SealedKeyStore implements KeyStore {
  readonly kind = 'database' as const;
  private readonly cache = new Map<string, string>();
  private readonly keks: ReadonlyMap<string, Kek>;

  constructor(
    private readonly store: SealedStore,
    readonly current: Kek,
    previous: readonly Kek[] = [],
    private readonly now: () => number = Date.now,
  ) {
    this.keks = new Map([...previous, current].map((k) => [k.id, k]));
  }

  async put(name: string, privateKeyPem: string): Promise<string> {
    const ref = keyRefFor(name);
    await this.store.putSealedKey({ ref, kekId: this.current.id, sealed: seal(this.current, ref, privateKeyPem), createdAt: this.now() });
    this.cache.set(ref, privateKeyPem);
    return ref;
  }

  async get(ref: string): Promise<string> {
    const cached = this.cache.get(ref);
    if (cached !== undefined) return cached;
    const record = await this.store.getSealedKey(ref);
    if (!record) throw new TollgateError('unavailable', 'key_missing', `the private key ${ref} is not in the database`);
    const kek = this.keks.get(record.kekId);
    if (!kek) {
      throw new TollgateError(
        'unavailable',
        'kek_missing',
        `the private key ${ref} is sealed with key-encryption key ${record.kekId}, which this process was not given (store.keyEncryptionKeyFile, store.previousKeyEncryptionKeyFiles)`,
      );
    }
    const pem = unseal(kek, ref, record.sealed);
    this.cache.set(ref, pem);
    return pem;
  }

  async discard(ref: string): Promise<void> {
    this.cache.delete(ref);
    await this.store.deleteSealedKey(ref);
  }

  /**
   * Re-seals, with the current KEK, every key sealed with another one this process was given; a
   * page at a time, each key in its own audited transaction. Resolves to how many it re-sealed
   * and which keys it could not open (sealed with a KEK nobody gave it).
   */
  async rotate(actor: Pick<AuditEntry, 'actor' | 'source'>, pageSize = 100): Promise<{ resealed: number; unopenable: string[] }> {
    let resealed = 0;
    const unopenable: string[] = [];
    const skipped = new Set<string>();
    for (;;) {
      const page = (await this.store.sealedKeysNotUnder(this.current.id, pageSize + skipped.size)).filter((k) => !skipped.has(k.ref));
      if (page.length === 0) break;
      for (const record of page) {
        const kek = this.keks.get(record.kekId);
        if (!kek) {
          skipped.add(record.ref);
          unopenable.push(record.ref);
          continue;
        }
        const pem = unseal(kek, record.ref, record.sealed);
        const done = await this.store.resealKey(record.ref, record.sealed, this.current.id, seal(this.current, record.ref, pem), {
          ...actor,
          action: 'key.resealed',
          outcome: 'success',
          target: record.ref,
          details: { from: record.kekId, to: this.current.id },
        });
        if (done) resealed++;
      }
    }
    return { resealed, unopenable };
  }
}
