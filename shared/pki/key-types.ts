/**
 * The key types Tollgate accepts for device certificates, CAs and token-signing keys, in one list:
 * the configuration's `pki.allowedKeyTypes`, a factory's `keyTypes`, `tollgate keys add --alg` and
 * `tollgate device issue-test --key` all draw from it.
 */
export const KEY_ALGORITHMS = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;

export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** What a key is generated as when nobody says otherwise. */
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ec-p256';

export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** The list as messages and help texts name it: `ec-p256, ec-p384, ...`. */
export const KEY_ALGORITHM_NAMES = KEY_ALGORITHMS.join(', ');
