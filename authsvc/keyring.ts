/**
 * The token-signing keys the realm works with, as the store describes them.
 *
 * Signing keys are created, activated and retired by other processes (the CLI, the admin API,
 * another instance), so the keyring follows the store: told at once by its change feed where the
 * engine has one, else polling `changeVersion('signing_keys')`, which is cheap; it reloads the
 * records only when that number moves. A failed reload keeps the previous keys: a momentarily busy
 * store must not stop token issuance.
 */
import crypto from 'node:crypto';
import { TollgateError } from '../shared/errors.js';
import type { KeyStore } from '../shared/keystore.js';
import type { Logger } from '../shared/log.js';
import type { SigningKeyRecord, Store } from '../shared/store/types.js';
import { followChanges } from '../shared/store/follow.js';
import type { SigningKey } from './jwt.js';

/** A key registries must accept: `trusted` (published ahead of use, or just rotated out) or `active`. */
export interface TrustedKey {
  kid: string;
  alg: string;
  status: 'trusted' | 'active';
  certificatePem: string;
  certificateDer: Buffer;
  publicKey: crypto.KeyObject;
  notAfter: Date;
}

export interface KeyringOptions {
  store: Pick<Store, 'listSigningKeys' | 'changeVersion' | 'subscribeChanges'>;
  keys: Pick<KeyStore, 'get'>;
  /** How often to look for changes made by other processes without a change feed; 0 disables polling. Default 2000. */
  pollMs?: number;
  log?: Logger;
}

export const DEFAULT_KEYRING_POLL_MS = 2000;

const JWS_ALGORITHMS: readonly SigningKey['alg'][] = ['ES256', 'ES384', 'RS256'];

interface Loaded {
  version: number;
  trusted: readonly TrustedKey[];
  active: SigningKey | null;
  /** Why there is no usable active key, when there is none. */
  problem: string | null;
}

function toTrusted(record: SigningKeyRecord & { status: 'trusted' | 'active' }): TrustedKey {
  const cert = new crypto.X509Certificate(record.certificatePem);
  return {
    kid: record.kid,
    alg: record.alg,
    status: record.status,
    certificatePem: record.certificatePem,
    certificateDer: cert.raw,
    publicKey: cert.publicKey,
    notAfter: new Date(cert.validTo),
  };
}

/** The active key, ready for jwt.ts; throws a message naming what is wrong with it. */
async function toSigningKey(key: TrustedKey, record: SigningKeyRecord, keys: Pick<KeyStore, 'get'>): Promise<SigningKey> {
  if (!(JWS_ALGORITHMS as readonly string[]).includes(record.alg)) {
    throw new Error(`signing key ${record.kid} has algorithm ${record.alg}; tokens are signed with ${JWS_ALGORITHMS.join(', ')}`);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(await keys.get(record.keyRef));
  } catch (e) {
    throw new Error(`the private key of signing key ${record.kid} (${record.keyRef}) cannot be read: ${(e as Error).message}`);
  }
  if (!new crypto.X509Certificate(key.certificateDer).checkPrivateKey(privateKey)) {
    throw new Error(`the private key ${record.keyRef} does not belong to the certificate of signing key ${record.kid}`);
  }
  return { kid: record.kid, alg: record.alg as SigningKey['alg'], privateKey, certificateDer: key.certificateDer };
}

export class Keyring {
  private loaded: Loaded = { version: -1, trusted: [], active: null, problem: 'signing keys not loaded yet' };
  private stopFollowing: (() => void) | null = null;
  private checking: Promise<boolean> | null = null;

  private constructor(private readonly options: KeyringOptions) {}

  /** Loads the keys now (throws if the store cannot be read) and starts following changes. */
  static async open(options: KeyringOptions): Promise<Keyring> {
    const keyring = new Keyring(options);
    await keyring.reload();
    keyring.stopFollowing = followChanges({
      store: options.store,
      topic: 'signing_keys',
      builtFrom: keyring.version,
      pollMs: options.pollMs ?? DEFAULT_KEYRING_POLL_MS,
      onChange: () => keyring.check().then(() => undefined),
      onError: (e) => options.log?.error({ err: e }, 'could not check the signing keys for changes'),
    });
    return keyring;
  }

  /** The key new tokens are signed with, or null when none is usable (see `problem`). */
  get active(): SigningKey | null {
    return this.loaded.active;
  }

  /** Every key a registry must trust, active first, then by age. */
  get trusted(): readonly TrustedKey[] {
    return this.loaded.trusted;
  }

  /** The store change version the current keys were loaded at. */
  get version(): number {
    return this.loaded.version;
  }

  get problem(): string | null {
    return this.loaded.problem;
  }

  /** The active key, or a 503-kind error: without it no token can be issued. */
  requireActive(): SigningKey {
    const key = this.loaded.active;
    if (!key) throw new TollgateError('unavailable', 'signing_key_unavailable', 'no active token-signing key is loaded');
    return key;
  }

  /** Reloads if another process changed the signing keys; resolves true if it did reload. */
  check(): Promise<boolean> {
    // One check at a time: a slow store must not pile up concurrent reloads.
    if (!this.checking) {
      this.checking = (async () => {
        const version = await this.options.store.changeVersion('signing_keys');
        if (version === this.loaded.version) return false;
        await this.reload();
        return true;
      })().finally(() => {
        this.checking = null;
      });
    }
    return this.checking;
  }

  /** Reads every key record again. */
  async reload(): Promise<void> {
    const { store, keys, log } = this.options;
    // Version first: a change landing between the two reads is seen again by the next check.
    const version = await store.changeVersion('signing_keys');
    const records = await store.listSigningKeys();
    const trusted: TrustedKey[] = [];
    let active: SigningKey | null = null;
    let problem: string | null = null;
    for (const record of records) {
      if (record.status === 'retired') continue;
      let key: TrustedKey;
      try {
        key = toTrusted({ ...record, status: record.status });
      } catch (e) {
        log?.error({ kid: record.kid, err: e }, 'signing key certificate is unreadable; leaving the key out');
        continue;
      }
      trusted.push(key);
      if (record.status === 'active') {
        try {
          active = await toSigningKey(key, record, keys);
        } catch (e) {
          problem = (e as Error).message;
        }
      }
    }
    if (!active && problem === null) problem = 'no signing key is active';
    trusted.sort((a, b) => (a.status === b.status ? 0 : a.status === 'active' ? -1 : 1));
    const previous = this.loaded;
    this.loaded = { version, trusted, active, problem };
    if (problem !== null) log?.error({ problem }, 'no usable token-signing key: the realm answers 503 until one is activated');
    else if (previous.active?.kid !== active?.kid) log?.info({ kid: active?.kid, trusted: trusted.length }, 'token-signing keys loaded');
    // Rotations are usually made by another process (the CLI); this is where the realm's log sees them.
    if (previous.version !== -1 && previous.active?.kid !== active?.kid) {
      log?.child({ component: 'audit' }).info(
        { action: 'signing_key.rotated', outcome: 'success', actor: 'system', from: previous.active?.kid ?? null, to: active?.kid ?? null },
        'signing_key.rotated',
      );
    }
  }

  close(): void {
    this.stopFollowing?.();
    this.stopFollowing = null;
  }
}
