import { createPublicKey } from 'node:crypto';
import { conflict, invalidInput, notFound } from '../errors.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, isKeyAlgorithm, issueCertificate, jwsAlgorithmFor, KEY_ALGORITHM_NAMES, libtrustKeyId } from '../pki/index.js';
import type { SigningKeyRecord, SigningKeyTransition } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit } from './events.js';

export interface NewSigningKeyOptions {
  algorithm?: unknown;
  /** Lifetime of the signing certificate: registry 2.8 checks the x5c certificate's dates. */
  days?: unknown;
  activate?: boolean;
}

/**
 * Creates a token-signing key and its self-signed certificate. It starts `trusted` (in the registry
 * bundle, not yet used) unless `activate` is set: rotation is add, publish the bundle, activate.
 */
export async function createSigningKey(deps: AuthorityDeps, actor: Actor, options: NewSigningKeyOptions = {}): Promise<SigningKeyRecord> {
  const algorithm = options.algorithm ?? DEFAULT_KEY_ALGORITHM;
  if (!isKeyAlgorithm(algorithm)) throw invalidInput('algorithm_invalid', `algorithm must be one of ${KEY_ALGORITHM_NAMES}`);
  const days = options.days ?? 365;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 3650) {
    throw invalidInput('days_invalid', 'days must be a whole number between 1 and 3650');
  }
  const pair = generateKeyPair(algorithm);
  const publicKey = createPublicKey(pair.publicKeyPem);
  const kid = libtrustKeyId(publicKey);
  const now = deps.now();
  const certificatePem = await issueCertificate({
    profile: 'token-signing',
    subject: { commonName: `Tollgate token signing ${kid.slice(0, 14)}`, organization: 'Tollgate' },
    publicKey,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + days * 86_400_000),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  const keyRef = await deps.keys.put(`signing-${kid.replaceAll(':', '').toLowerCase()}`, pair.privateKeyPem);
  const record: SigningKeyRecord = {
    kid,
    alg: jwsAlgorithmFor(publicKey),
    certificatePem,
    keyRef,
    status: 'trusted',
    createdAt: now,
    activatedAt: null,
  };
  try {
    await commit(deps, { type: 'signing_key.created', ...by(actor), target: kid, details: { alg: record.alg } }, (audit) => deps.store.addSigningKey(record, audit));
  } catch (e) {
    await deps.keys.discard(keyRef);
    throw e;
  }
  if (options.activate) {
    await activateSigningKey(deps, actor, kid);
    return { ...record, status: 'active', activatedAt: deps.now() };
  }
  return record;
}

async function requireSigningKey(deps: AuthorityDeps, kid: unknown): Promise<{ key: SigningKeyRecord; all: SigningKeyRecord[] }> {
  if (typeof kid !== 'string' || kid.length > 64) throw invalidInput('kid_invalid', 'kid must be a key id string');
  const all = await deps.store.listSigningKeys();
  const key = all.find((k) => k.kid === kid);
  if (!key) throw notFound('signing_key_not_found', `no signing key ${kid}`);
  return { key, all };
}

/**
 * Makes `kid` the one key new tokens are signed with. The key it replaces stays trusted, since
 * registries must keep accepting the tokens it signed until they expire; a retired key never
 * comes back (registries may already have dropped it).
 */
export async function activateSigningKey(deps: AuthorityDeps, actor: Actor, kid: unknown): Promise<void> {
  const { key, all } = await requireSigningKey(deps, kid);
  if (key.status === 'retired') throw conflict('signing_key_retired', `signing key ${key.kid} is retired`);
  const transitions: SigningKeyTransition[] = all
    .filter((k) => k.status === 'active' && k.kid !== key.kid)
    .map((k) => ({ kid: k.kid, from: 'active', to: 'trusted' }));
  if (key.status !== 'active') transitions.push({ kid: key.kid, from: key.status, to: 'active', activatedAt: deps.now() });
  await commit(deps, { type: 'signing_key.activated', ...by(actor), target: key.kid }, (audit) => deps.store.transitionSigningKeys(transitions, audit));
}

/** Takes a key out of the registry bundle; the active key cannot go (activate another first). */
export async function retireSigningKey(deps: AuthorityDeps, actor: Actor, kid: unknown): Promise<void> {
  const { key } = await requireSigningKey(deps, kid);
  if (key.status === 'active') throw conflict('signing_key_active', `activate another key before retiring ${key.kid}`);
  const transitions: SigningKeyTransition[] = key.status === 'retired' ? [] : [{ kid: key.kid, from: key.status, to: 'retired' }];
  await commit(deps, { type: 'signing_key.retired', ...by(actor), target: key.kid }, (audit) => deps.store.transitionSigningKeys(transitions, audit));
}
