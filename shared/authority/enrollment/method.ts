import type { KeyObject } from 'node:crypto';
import { conflict, invalidInput } from '../../errors.js';
import { issueCertificate, parseCertificate, type CertificateInfo, type KeyDescription } from '../../pki/index.js';
import type { Device, DeviceCa, DeviceState, Factory } from '../../store/types.js';
import type { AuthorityDeps } from '../context.js';
import { commit, type DeviceEnrolledDetails, type DomainEvent } from '../events.js';
import { assertDeviceUuid } from '../names.js';
import { certificatePolicy, checkKeyType, checkUsage, checkValidity, checkWithinCa, CLOCK_SKEW_MS, type CertificatePolicy, type UsageClaim } from './policy.js';

/**
 * Enrollment methods, after step-ca's provisioners: each way a device certificate comes to be
 * (from a CSR, from a certificate a factory CA issued, just in time at the gateway, by EST
 * re-enrollment) says what it asks for, and `enroll` runs every one through the same checks in the
 * same order: usages, key type, lifetime or validity window, CA state, then the method's own.
 * A new method is one file implementing EnrollmentMethod.
 */

export type EnrollmentVia = DeviceEnrolledDetails['via'] | 'renewal';

/** What a method asks the authority to certify (a public key) or to accept (a certificate). */
export interface EnrollmentClaim {
  factory: Factory;
  /** The device UUID: the certificate's CN. */
  uuid: string;
  key: KeyDescription;
  usage: UsageClaim;
  subject: { publicKey: KeyObject } | { certificate: CertificateInfo };
}

export interface EnrollmentMethod<Input, Claim extends EnrollmentClaim, Result> {
  readonly via: EnrollmentVia;
  /** Reads the input into a claim, checking its form and subject; writes nothing. */
  claim(deps: AuthorityDeps, input: Input): Promise<Claim>;
  /** The lifetime of a certificate it issues, within the policy (default: the policy's certMaxDays). */
  lifetimeMs?(claim: Claim, policy: CertificatePolicy): number;
  /** The CA that signs the certificate, or that issued it; refuses one that may not. */
  ca(deps: AuthorityDeps, claim: Claim): Promise<DeviceCa>;
  /** Checks of the method's own, last before anything is issued (an enrolled UUID, a test device). */
  admit?(deps: AuthorityDeps, claim: Claim): Promise<void>;
  /** Stores the result (a new device, a rotated certificate) with its event. */
  record(deps: AuthorityDeps, claim: Claim, ca: DeviceCa, certificate: CertificateInfo): Promise<Result>;
}

/** An enrollment that passed every check and has its certificate, not yet recorded. */
export interface PreparedEnrollment<Claim extends EnrollmentClaim> {
  claim: Claim;
  ca: DeviceCa;
  certificate: CertificateInfo;
}

export async function enroll<Input, Claim extends EnrollmentClaim, Result>(
  deps: AuthorityDeps,
  method: EnrollmentMethod<Input, Claim, Result>,
  input: Input,
): Promise<Result> {
  const { claim, ca, certificate } = await prepareEnrollment(deps, method, input);
  return method.record(deps, claim, ca, certificate);
}

/** Every step of `enroll` but the last: the checks, and the certificate issued or accepted. */
export async function prepareEnrollment<Input, Claim extends EnrollmentClaim, Result>(
  deps: AuthorityDeps,
  method: EnrollmentMethod<Input, Claim, Result>,
  input: Input,
): Promise<PreparedEnrollment<Claim>> {
  const claim = await method.claim(deps, input);
  const policy = await certificatePolicy(deps, claim.factory.id);
  checkUsage(claim.usage);
  checkKeyType(policy, claim.key, claim.factory);
  if ('certificate' in claim.subject) checkValidity(claim.subject.certificate, deps.now());
  const lifetimeMs = method.lifetimeMs?.(claim, policy) ?? policy.certMaxDays * DAY;
  const ca = await method.ca(deps, claim);
  if ('certificate' in claim.subject) checkWithinCa(claim.subject.certificate, ca);
  await method.admit?.(deps, claim);
  const certificate =
    'certificate' in claim.subject ? claim.subject.certificate : await issue(deps, claim, claim.subject.publicKey, ca, lifetimeMs);
  return { claim, ca, certificate };
}

const DAY = 86_400_000;

/** Signs a device certificate with an online CA, never beyond the CA's own lifetime. */
async function issue(deps: AuthorityDeps, claim: EnrollmentClaim, publicKey: KeyObject, ca: DeviceCa, lifetimeMs: number): Promise<CertificateInfo> {
  if (ca.keyRef === null) throw conflict('ca_not_online', `CA ${ca.id} is not an online CA: Tollgate does not hold its key`);
  const now = deps.now();
  const certificatePem = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: claim.uuid, organizationalUnit: claim.factory.name },
    publicKey,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(Math.min(now + lifetimeMs, ca.notAfter)),
    issuer: { certificatePem: ca.certificatePem, privateKeyPem: await deps.keys.get(ca.keyRef) },
  });
  return parseCertificate(certificatePem);
}

/** The device a certificate's subject names: CN = device UUID, OU = the factory's name. */
export function subjectDevice(subject: { commonName?: string; organizationalUnit?: string }, factory: Factory, what: string): string {
  const uuid = assertDeviceUuid(subject.commonName, `the ${what}'s CN (device UUID)`);
  if (subject.organizationalUnit !== factory.name) {
    throw invalidInput(
      'factory_mismatch',
      `the ${what}'s OU is ${subject.organizationalUnit === undefined ? 'missing' : `"${subject.organizationalUnit}"`}; it must be the factory name "${factory.name}"`,
    );
  }
  return uuid;
}

/**
 * Refuses a UUID that is not the factory's to enroll (as a test device or not). Device UUIDs are
 * global (the token username, the JWT subject, what the gateway looks up by CN): a UUID in use, one
 * that was revoked and deleted, and one another factory deleted are all refused alike, naming no
 * factory. A factory may enroll again a UUID it deleted without revoking, as what it was: a test
 * device's UUID is only ever a test device's.
 */
export async function refuseTaken(deps: AuthorityDeps, claim: Pick<EnrollmentClaim, 'factory' | 'uuid'>, test: boolean): Promise<void> {
  const { factory, uuid } = claim;
  const taken = () =>
    conflict('device_exists', `device UUID ${uuid} is taken; a UUID names one device across every factory, and a revoked one is never used again: generate a new one`);
  if (await deps.store.getDevice(uuid)) throw taken();
  const tombstone = await deps.store.getDeviceTombstone(uuid);
  if (tombstone && (tombstone.revoked || tombstone.factoryId !== factory.id)) throw taken();
  if (tombstone?.wasTest && !test) {
    throw conflict('device_uuid_test_only', `device UUID ${uuid} was a test device's: it can be enrolled again as a test device only`);
  }
}

export interface NewDevice {
  actor: { actor: string; source: string | null };
  claim: EnrollmentClaim;
  ca: DeviceCa;
  certificate: CertificateInfo;
  via: DeviceEnrolledDetails['via'];
  name: string | null;
  test: boolean;
  state: DeviceState;
  stateReason: string | null;
  /** One of a bulk enrollment. */
  bulk?: boolean;
}

/** Stores a newly enrolled device with its `device.enrolled` (or `device.registered_jit`) event. */
export async function insertEnrolledDevice(deps: AuthorityDeps, d: NewDevice): Promise<Device> {
  const { device, event } = newDevice(deps, d);
  return commit(deps, event, (audit) => deps.store.insertDevice(device, audit));
}

/** The device row a new enrollment writes, and the event that describes it. */
export function newDevice(deps: AuthorityDeps, d: NewDevice): { device: Device; event: DomainEvent } {
  const now = deps.now();
  const device: Device = {
    uuid: d.claim.uuid,
    factoryId: d.claim.factory.id,
    caId: d.ca.id,
    name: d.name,
    state: d.state,
    stateReason: d.stateReason,
    isTest: d.test,
    certificatePem: d.certificate.pem,
    certificateFingerprint: d.certificate.fingerprint256,
    publicKeyFingerprint: d.certificate.publicKeyFingerprint,
    notAfter: d.certificate.notAfter.getTime(),
    createdAt: now,
    updatedAt: now,
  };
  const details: DeviceEnrolledDetails = {
    via: d.via,
    caId: d.ca.id,
    state: d.state,
    test: d.test,
    fingerprint256: d.certificate.fingerprint256,
    notAfter: d.certificate.notAfter.toISOString(),
    ...(d.bulk ? { bulk: true } : {}),
  };
  const type = d.via === 'jit' ? 'device.registered_jit' : 'device.enrolled';
  return { device, event: { type, ...d.actor, factoryId: device.factoryId, target: device.uuid, details } };
}
