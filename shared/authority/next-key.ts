import crypto from 'node:crypto';
import { conflict, forbidden, invalidInput } from '../errors.js';
import { describePublicKey, publicKeyFingerprint } from '../pki/index.js';
import { readPemBlocks } from '../pki/pem.js';
import type { DeviceAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import { certificatePolicy, checkKeyType } from './enrollment/policy.js';
import { commit, record } from './events.js';

/**
 * The next key of a certificate rotation ("lock" in fioconfig's renew-cert): a device announces,
 * with its current certificate, the public key its next certificate will certify. While that
 * announcement stands, re-enrollment certifies that key and no other, so whoever else holds the
 * current key cannot slip a certificate for a key of their own into a rotation in progress.
 *
 * A client may also announce after re-enrolling (fioconfig runs EST first, then the lock): the key
 * then already is the newest certificate's, and the announcement is satisfied at once.
 *
 * An announcement lapses after NEXT_KEY_LOCK_MS, so a device that lost its half-finished rotation
 * (a reflash, a wiped state file) can start a new one with a new key a day later.
 */

export const NEXT_KEY_LOCK_MS = 24 * 3_600_000;

export interface NextKeyState {
  fingerprint256: string;
  /** `pending`: no certificate for it yet; `certified`: the newest certificate is for this key. */
  state: 'pending' | 'certified';
  announcedAt: string | null;
  expiresAt: string | null;
}

function parsePublicKey(pem: unknown): crypto.KeyObject {
  if (typeof pem !== 'string' || pem.trim() === '') {
    throw invalidInput('next_pubkey_missing', 'next_pubkey must be the PEM ("-----BEGIN PUBLIC KEY-----") of the next key');
  }
  const blocks = readPemBlocks(pem, ['PUBLIC KEY']);
  if (blocks.length !== 1) throw invalidInput('next_pubkey_invalid', `next_pubkey must hold exactly one PUBLIC KEY block, found ${blocks.length}`);
  try {
    return crypto.createPublicKey({ key: (blocks[0] as { der: Buffer }).der, format: 'der', type: 'spki' });
  } catch {
    throw invalidInput('next_pubkey_invalid', 'next_pubkey is not a readable SubjectPublicKeyInfo');
  }
}

/** The announcement in force for `device`, if any (a lapsed one is ignored). */
export async function pendingNextKey(deps: AuthorityDeps, device: DeviceAuthView): Promise<NextKeyState | null> {
  const announced = await deps.store.getNextKey(device.uuid);
  if (!announced || announced.announcedAt + NEXT_KEY_LOCK_MS <= deps.now()) return null;
  return {
    fingerprint256: announced.publicKeyFingerprint,
    state: 'pending',
    announcedAt: new Date(announced.announcedAt).toISOString(),
    expiresAt: new Date(announced.announcedAt + NEXT_KEY_LOCK_MS).toISOString(),
  };
}

/** Records the key `device` announces for its next certificate (PATCH /device `next_pubkey`). */
export async function announceNextKey(deps: AuthorityDeps, device: DeviceAuthView, publicKeyPem: unknown, source: string | null): Promise<NextKeyState> {
  const key = parsePublicKey(publicKeyPem);
  const description = describePublicKey(key);
  checkKeyType(await certificatePolicy(deps, device.factoryId), description, { id: device.factoryId, name: device.factoryName, createdAt: 0 });
  const fingerprint = publicKeyFingerprint(key);
  const by = { actor: `device:${device.uuid}`, factoryId: device.factoryId, target: device.uuid, source };

  if (fingerprint === device.publicKeyFingerprint) {
    await commit(deps, { type: 'device.next_key_cleared', ...by, details: { reason: 'certified' } }, (audit) => deps.store.clearNextKey(device.uuid, audit), {
      publishedIf: (cleared) => cleared,
    });
    await record(deps, { type: 'device.next_key_announced', ...by, details: { publicKeyFingerprint: fingerprint, state: 'certified' } });
    return { fingerprint256: fingerprint, state: 'certified', announcedAt: null, expiresAt: null };
  }
  const standing = await pendingNextKey(deps, device);
  if (standing && standing.fingerprint256 !== fingerprint) {
    await record(deps, { type: 'device.next_key_refused', ...by, reason: 'next_key_locked', details: { publicKeyFingerprint: fingerprint } });
    throw conflict(
      'next_key_locked',
      `another next key was announced at ${standing.announcedAt}; finish that rotation, or announce again after ${standing.expiresAt}`,
    );
  }
  const now = deps.now();
  await commit(
    deps,
    { type: 'device.next_key_announced', ...by, details: { publicKeyFingerprint: fingerprint, algorithm: description.algorithm, state: 'pending' } },
    (audit) => deps.store.putNextKey({ deviceUuid: device.uuid, publicKeyFingerprint: fingerprint, announcedAt: now }, audit),
  );
  return { fingerprint256: fingerprint, state: 'pending', announcedAt: new Date(now).toISOString(), expiresAt: new Date(now + NEXT_KEY_LOCK_MS).toISOString() };
}

/** Re-enrollment's check: with an announcement in force, only the announced key is certified. */
export async function requireAnnouncedKey(deps: AuthorityDeps, device: DeviceAuthView, csrPublicKeyFingerprint: string): Promise<void> {
  const standing = await pendingNextKey(deps, device);
  if (standing && standing.fingerprint256 !== csrPublicKeyFingerprint) {
    throw forbidden('next_key_mismatch', `the CSR's key is not the next key this device announced at ${standing.announcedAt} (PATCH /device next_pubkey)`);
  }
}
