import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { invalidInput } from './errors.js';
import { writeFileAtomic } from './files.js';

/**
 * Private keys the authority holds (online device CAs, token-signing keys) live here: one PEM file
 * each under `<pkiDir>/keys/`, mode 0600, written atomically (temp file + rename) so a crash never
 * leaves half a key. The store only keeps a reference (`keys/<name>.key`), never key material.
 */
export class KeyStore {
  private readonly cache = new Map<string, string>();

  constructor(readonly root: string) {}

  /** Writes a new key and returns its reference. Never overwrites. */
  put(name: string, privateKeyPem: string): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,100}$/.test(name)) throw invalidInput('key_name_invalid', `invalid key name "${name}"`);
    const ref = `keys/${name}.key`;
    const path = this.pathOf(ref);
    if (existsSync(path)) throw invalidInput('key_exists', `key ${ref} already exists`);
    writeFileAtomic(path, privateKeyPem, 0o600);
    this.cache.set(ref, privateKeyPem);
    return ref;
  }

  get(ref: string): string {
    const cached = this.cache.get(ref);
    if (cached !== undefined) return cached;
    const pem = readFileSync(this.pathOf(ref), 'utf8');
    this.cache.set(ref, pem);
    return pem;
  }

  has(ref: string): boolean {
    return this.cache.has(ref) || existsSync(this.pathOf(ref));
  }

  /** Removes a key that was written but whose store record could not be committed. */
  discard(ref: string): void {
    this.cache.delete(ref);
    rmSync(this.pathOf(ref), { force: true });
  }

  private pathOf(ref: string): string {
    const rel = normalize(ref);
    if (!rel.startsWith(`keys${sep}`) || rel.includes('..')) throw invalidInput('key_ref_invalid', `invalid key reference "${ref}"`);
    return join(this.root, rel);
  }
}
