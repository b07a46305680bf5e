import { createPublicKey, randomUUID } from 'node:crypto';
import { conflict, invalidInput, notFound } from '../errors.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, issueCertificate, parseCertificate, type CertificateInfo, type KeyAlgorithm } from '../pki/index.js';
import type { CaState, DeviceCa, Factory } from '../store/types.js';
import { verifyProofOfPossession } from './ca-registration.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit, type CaStateEvent } from './events.js';
import { assertFactoryName, assertLabel } from './names.js';
import { deviceTokensOutliveCa } from './tokens.js';

export async function createFactory(deps: AuthorityDeps, actor: Actor, name: unknown): Promise<Factory> {
  const factoryName = assertFactoryName(name);
  const factory: Factory = { id: randomUUID(), name: factoryName, createdAt: deps.now() };
  return commit(deps, { type: 'factory.created', ...by(actor), factoryId: factory.id, target: factoryName }, (audit) =>
    deps.store.createFactory(factory, audit),
  );
}

export async function requireFactory(deps: AuthorityDeps, name: unknown): Promise<Factory> {
  const factoryName = assertFactoryName(name);
  const factory = await deps.store.getFactoryByName(factoryName);
  if (!factory) throw notFound('factory_not_found', `no factory named "${factoryName}"`);
  return factory;
}

export interface OnlineCaOptions {
  commonName?: unknown;
  keyAlgorithm?: KeyAlgorithm;
  days?: unknown;
}

const CA_DAYS_MAX = 20 * 365;

/**
 * Creates a device CA whose key Tollgate holds and signs enrollment CSRs with. The key file is
 * written first and discarded again if the store refuses the record, so no half-created CA remains.
 */
export async function createOnlineCa(deps: AuthorityDeps, actor: Actor, factory: Factory, options: OnlineCaOptions = {}): Promise<DeviceCa> {
  const commonName = assertLabel(options.commonName, 'common_name', 64) ?? `${factory.name.slice(0, 54)} device CA`; // X.509 caps a CN at 64 characters
  const days = options.days === undefined ? 10 * 365 : options.days;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > CA_DAYS_MAX) {
    throw invalidInput('days_invalid', `CA lifetime must be a whole number of days between 1 and ${CA_DAYS_MAX}`);
  }
  const keyPair = generateKeyPair(options.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM);
  const now = deps.now();
  const certificatePem = await issueCertificate({
    profile: 'device-ca',
    subject: { commonName, organizationalUnit: factory.name, organization: 'Tollgate' },
    publicKey: createPublicKey(keyPair.publicKeyPem),
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + days * 86_400_000),
    selfSignPrivateKeyPem: keyPair.privateKeyPem,
  });
  const cert = parseCertificate(certificatePem);
  refuseSubjectOfOtherFactory(await deps.store.listDeviceCas(), factory, cert);
  const id = randomUUID();
  const keyRef = await deps.keys.put(`ca-${id}`, keyPair.privateKeyPem);
  const ca: DeviceCa = {
    id,
    factoryId: factory.id,
    kind: 'online',
    certificatePem: cert.pem,
    fingerprint256: cert.fingerprint256,
    subjectCommonName: commonName,
    notAfter: cert.notAfter.getTime(),
    state: 'active',
    stateReason: null,
    keyRef,
    createdAt: now,
  };
  try {
    return await commit(
      deps,
      { type: 'ca.created', ...by(actor), factoryId: factory.id, target: id, details: { kind: 'online', fingerprint256: cert.fingerprint256 } },
      (audit) => deps.store.addDeviceCa(ca, audit),
    );
  } catch (e) {
    await deps.keys.discard(keyRef);
    throw e;
  }
}

/**
 * Registers a CA certificate the factory holds the key of (Tollgate never sees it). Devices it
 * issued can then be enrolled from their certificates. The key must be proven by a verification
 * certificate (see ca-registration.ts).
 */
export async function addExternalCa(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  certificatePem: unknown,
  verificationCertificatePem?: unknown,
): Promise<DeviceCa> {
  if (typeof certificatePem !== 'string') throw invalidInput('certificate_missing', 'a PEM CA certificate is required');
  const cert = parseCertificate(certificatePem);
  if (!cert.isCa || !cert.keyUsage.includes('keyCertSign')) {
    throw invalidInput('certificate_not_ca', 'the certificate is not a CA certificate (basicConstraints CA=true and keyUsage keyCertSign are required)');
  }
  const now = deps.now();
  if (cert.notAfter.getTime() <= now) throw invalidInput('certificate_expired', `the CA certificate expired on ${cert.notAfter.toISOString()}`);
  if (cert.subject.organizationalUnit !== undefined && cert.subject.organizationalUnit !== factory.name) {
    throw invalidInput('ca_factory_mismatch', `the CA certificate's OU "${cert.subject.organizationalUnit}" is not the factory "${factory.name}"`);
  }
  const registered = await deps.store.listDeviceCas();
  if (registered.some((c) => c.fingerprint256 === cert.fingerprint256)) {
    throw conflict('ca_exists', 'this CA certificate is already registered');
  }
  refuseSubjectOfOtherFactory(registered, factory, cert);
  await verifyProofOfPossession(deps, factory, cert, verificationCertificatePem);
  const id = randomUUID();
  const ca: DeviceCa = {
    id,
    factoryId: factory.id,
    kind: 'external',
    certificatePem: cert.pem,
    fingerprint256: cert.fingerprint256,
    subjectCommonName: cert.subject.commonName ?? '',
    notAfter: cert.notAfter.getTime(),
    state: 'active',
    stateReason: null,
    keyRef: null,
    createdAt: now,
  };
  return commit(
    deps,
    { type: 'ca.added', ...by(actor), factoryId: factory.id, target: id, details: { kind: 'external', fingerprint256: cert.fingerprint256 } },
    (audit) => deps.store.addDeviceCa(ca, audit),
  );
}

/**
 * Another factory's CA under the same name (as OpenSSL compares names) would stand for it wherever
 * issuers are looked up by name. The gateway never does (it judges a device against its own
 * factory's CAs only, see device-trust.ts), but a name is how people and other tools tell CAs
 * apart: one factory's CA name is not another's to take. A factory may reuse its own (key rollover).
 */
function refuseSubjectOfOtherFactory(registered: readonly DeviceCa[], factory: Factory, cert: CertificateInfo): void {
  const taken = registered.some((c) => c.factoryId !== factory.id && parseCertificate(c.certificatePem).subjectCanonical === cert.subjectCanonical);
  if (taken) {
    throw conflict('ca_subject_in_use', "another factory's CA has this subject name; give the CA a name of its own (for example with the factory in its O or OU)");
  }
}

export async function requireCa(deps: AuthorityDeps, factory: Factory, caId: unknown): Promise<DeviceCa> {
  if (typeof caId !== 'string' || caId.length > 64) throw invalidInput('ca_id_invalid', 'CA id must be a string');
  const ca = await deps.store.getDeviceCa(caId);
  // Another factory's CA is reported exactly like a missing one: ids must not leak across factories.
  if (!ca || ca.factoryId !== factory.id) throw notFound('ca_not_found', `factory "${factory.name}" has no CA ${caId}`);
  return ca;
}

/** The CA that signs a factory's CSRs: the one named, or the newest active online CA. */
export async function signingCaFor(deps: AuthorityDeps, factory: Factory, caId?: unknown): Promise<DeviceCa> {
  if (caId !== undefined && caId !== null) {
    const ca = await requireCa(deps, factory, caId);
    if (ca.kind !== 'online') throw conflict('ca_not_online', `CA ${ca.id} is not an online CA: Tollgate does not hold its key`);
    if (ca.state !== 'active') throw conflict('ca_not_active', `CA ${ca.id} is ${ca.state}: it enrolls no new devices`);
    return ca;
  }
  const cas = (await deps.store.listDeviceCas({ factoryId: factory.id })).filter((c) => c.kind === 'online' && c.state === 'active');
  const ca = cas[cas.length - 1];
  if (!ca) throw conflict('no_online_ca', `factory "${factory.name}" has no active online CA to sign with`);
  return ca;
}

const CA_EVENT: Record<CaState, CaStateEvent> = { active: 'ca.enabled', disabled: 'ca.disabled', revoked: 'ca.revoked' };

const CA_TRANSITIONS: Record<CaState, CaState[]> = {
  active: ['disabled', 'revoked'],
  disabled: ['active', 'revoked'],
  revoked: [],
};

export async function setCaState(deps: AuthorityDeps, actor: Actor, factory: Factory, caId: unknown, state: CaState, reason: unknown): Promise<DeviceCa> {
  const ca = await requireCa(deps, factory, caId);
  const why = assertLabel(reason, 'reason');
  if (!CA_TRANSITIONS[ca.state].includes(state)) {
    throw conflict('ca_state_transition', `a ${ca.state} CA cannot become ${state}`);
  }
  return commit(deps, { type: CA_EVENT[state], ...by(actor), factoryId: factory.id, target: ca.id, reason: why }, (audit) =>
    deps.store.setDeviceCaState(ca.id, state, why, audit, { revokeDeviceTokens: !deviceTokensOutliveCa(state) }),
  );
}
