import { invalidInput } from '../../errors.js';
import { parseCsr } from '../../pki/index.js';
import type { Factory } from '../../store/types.js';
import { by, type Actor, type AuthorityDeps } from '../context.js';
import { signingCaFor } from '../factories.js';
import { assertLabel } from '../names.js';
import { enroll, insertEnrolledDevice, refuseTaken, subjectDevice, type EnrollmentClaim, type EnrollmentMethod } from './method.js';
import type { CertificatePolicy } from './policy.js';
import type { Enrolled } from './types.js';

/** Enrollment from a CSR: the factory's online CA signs the device's key. */

export interface CsrEnrollment {
  csrPem: unknown;
  name?: unknown;
  caId?: unknown;
  /** Lifetime in days (enrolled devices) ... */
  days?: unknown;
  /** ... or in hours or minutes for a test device, capped by policy. */
  test?: boolean;
  hours?: unknown;
  minutes?: unknown;
}

interface Input {
  actor: Actor;
  factory: Factory;
  request: CsrEnrollment;
}

interface Claim extends EnrollmentClaim {
  input: Input;
  name: string | null;
}

const DAY = 86_400_000;

function positiveInt(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalidInput(`${field}_invalid`, `${field} must be a whole number between 1 and ${max}`);
  }
  return value;
}

/** Test certificates are short-lived by design; minutes let CI watch one expire. */
function testLifetimeMs(request: CsrEnrollment, policy: CertificatePolicy): number {
  const capHours = policy.testCertMaxHours;
  const capMinutes = capHours * 60;
  if (request.hours !== undefined && request.minutes !== undefined) throw invalidInput('lifetime_ambiguous', 'give hours or minutes, not both');
  const inMinutes = request.minutes !== undefined;
  const asked = inMinutes ? request.minutes : request.hours;
  if (typeof asked === 'number' && Number.isInteger(asked) && asked > (inMinutes ? capMinutes : capHours)) {
    throw invalidInput('lifetime_exceeds_policy', `a test certificate may live at most ${capHours} hours; ${asked} ${inMinutes ? 'minutes' : 'hours'} were asked`);
  }
  const minutes = inMinutes
    ? positiveInt(request.minutes, 'minutes', capMinutes)
    : request.hours !== undefined
      ? positiveInt(request.hours, 'hours', capHours) * 60
      : Math.min(60, capMinutes);
  return minutes * 60_000;
}

function enrolledLifetimeMs(request: CsrEnrollment, policy: CertificatePolicy): number {
  const cap = policy.certMaxDays;
  if (typeof request.days === 'number' && Number.isInteger(request.days) && request.days > cap) {
    throw invalidInput('lifetime_exceeds_policy', `a device certificate may live at most ${cap} days; ${request.days} were asked`);
  }
  return (request.days === undefined ? cap : positiveInt(request.days, 'days', cap)) * DAY;
}

export const csrEnrollment: EnrollmentMethod<Input, Claim, Enrolled> = {
  via: 'csr',
  async claim(_deps, input) {
    const { request, factory } = input;
    if (typeof request.csrPem !== 'string') throw invalidInput('csr_missing', 'a PEM certificate signing request (csr) is required');
    const name = assertLabel(request.name, 'name', 128);
    const csr = await parseCsr(request.csrPem);
    const uuid = subjectDevice(csr.subject, factory, 'CSR');
    return {
      input,
      name,
      factory,
      uuid,
      key: csr.key,
      usage: { source: 'requested', keyUsage: csr.requestedKeyUsage, extendedKeyUsage: csr.requestedExtendedKeyUsage },
      subject: { publicKey: csr.publicKey },
    };
  },
  lifetimeMs: (claim, policy) => (claim.input.request.test ? testLifetimeMs(claim.input.request, policy) : enrolledLifetimeMs(claim.input.request, policy)),
  ca: (deps, claim) => signingCaFor(deps, claim.factory, claim.input.request.caId),
  admit: (deps, claim) => refuseTaken(deps, claim, claim.input.request.test === true),
  async record(deps, claim, ca, certificate) {
    const test = claim.input.request.test === true;
    const actor = by(claim.input.actor);
    const device = await insertEnrolledDevice(deps, { actor, claim, ca, certificate, via: 'csr', name: claim.name, test, state: 'active', stateReason: null });
    return { device, certificatePem: certificate.pem, caCertificatePem: ca.certificatePem };
  },
};

/** Enrolls a device from its CSR: the factory's online CA signs it. */
export function enrollFromCsr(deps: AuthorityDeps, actor: Actor, factory: Factory, request: CsrEnrollment): Promise<Enrolled> {
  return enroll(deps, csrEnrollment, { actor, factory, request });
}
