import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { invalidInput } from './errors.js';
import { writeFileAtomic } from './files.js';

/**
 * Where the private keys the authority holds (online device CAs, token-signing keys) are kept. The
 * store only ever records a reference to one. Two implementations: files under pkiDir (one host,
 * the SQLite default) and the database itself, sealed with a key-encryption key (several
 * instances; shared/sealed-keystore.ts).
 */
export interface KeyStore {
  /** Where keys live, for messages: `files` or `database`. */
  readonly kind: 'files' | 'database';
  /** Keeps a new key and returns its reference. Never overwrites. */
  put(name: string, privateKeyPem: string): Promise<string>;
  get(ref: string): Promise<string>;
  /** Removes a key that was kept but whose store record could not be committed. */
  discard(ref: string): Promise<void>;
}

export const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,100}$/;

export function keyRefFor(name: string): string {
  if (!KEY_NAME.test(name)) throw invalidInput('key_name_invalid', `invalid key name "${name}"`);
  return `keys/${name}.key`;
}

/**
 * One PEM file per key under `<pkiDir>/keys/`, mode 0600, written atomically (temp file + rename)
 * so a crash never leaves half a key.
 */
export class FileKeyStore implements KeyStore {
  readonly kind = 'files' as const;
  private readonly cache = new Map<string, string>();

  constructor(readonly root: string) {}

  async put(name: string, privateKeyPem: string): Promise<string> {
    const ref = keyRefFor(name);
    const path = this.pathOf(ref);
    if (existsSync(path)) throw invalidInput('key_exists', `key ${ref} already exists`);
    writeFileAtomic(path, privateKeyPem, 0o600);
    this.cache.set(ref, privateKeyPem);
    return ref;
  }

  async get(ref: string): Promise<string> {
    const cached = this.cache.get(ref);
    if (cached !== undefined) return cached;
    const pem = readFileSync(this.pathOf(ref), 'utf8');
    this.cache.set(ref, pem);
    return pem;
  }

  async discard(ref: string): Promise<void> {
    this.cache.delete(ref);
    rmSync(this.pathOf(ref), { force: true });
  }

  private pathOf(ref: string): string {
    const rel = normalize(ref);
    if (!rel.startsWith(`keys${sep}`) || rel.includes('..')) throw invalidInput('key_ref_invalid', `invalid key reference "${ref}"`);
    return join(this.root, rel);
  }
}
