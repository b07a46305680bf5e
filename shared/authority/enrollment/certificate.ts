import { conflict, invalidInput } from '../../errors.js';
import { isIssuedBy, parseCertificate, type CertificateInfo } from '../../pki/index.js';
import type { DeviceCa, Factory } from '../../store/types.js';
import { by, type Actor, type AuthorityDeps } from '../context.js';
import { assertLabel } from '../names.js';
import { enroll, insertEnrolledDevice, refuseTaken, subjectDevice, type EnrollmentClaim, type EnrollmentMethod } from './method.js';
import type { Enrolled } from './types.js';

/** Enrollment from a certificate one of the factory's CAs issued (the factory signed it offline). */

interface Input {
  actor: Actor;
  factory: Factory;
  request: { certificatePem: unknown; name?: unknown };
}

interface Claim extends EnrollmentClaim {
  actor: Actor;
  name: string | null;
  subject: { certificate: CertificateInfo };
}

/** Certificate information of a claim that accepts an existing certificate (this method and JIT). */
export function certificateClaim(factory: Factory, uuid: string, cert: CertificateInfo): EnrollmentClaim & { subject: { certificate: CertificateInfo } } {
  return {
    factory,
    uuid,
    key: cert.key,
    usage: { source: 'present', isCa: cert.isCa, keyUsage: cert.keyUsage, extendedKeyUsage: cert.extendedKeyUsage },
    subject: { certificate: cert },
  };
}

/** The factory CA that issued `cert`; it must be active to enroll anyone new. */
async function issuingCa(deps: AuthorityDeps, factory: Factory, cert: CertificateInfo): Promise<DeviceCa> {
  for (const ca of await deps.store.listDeviceCas({ factoryId: factory.id })) {
    if (isIssuedBy(cert, parseCertificate(ca.certificatePem))) {
      if (ca.state !== 'active') throw conflict('ca_not_active', `the issuing CA ${ca.id} is ${ca.state}: it enrolls no new devices`);
      return ca;
    }
  }
  throw invalidInput('certificate_untrusted', `the certificate was not issued by any CA of factory "${factory.name}"`);
}

export const certificateEnrollment: EnrollmentMethod<Input, Claim, Enrolled> = {
  via: 'certificate',
  async claim(_deps, { actor, factory, request }) {
    if (typeof request.certificatePem !== 'string') throw invalidInput('certificate_missing', 'a PEM device certificate is required');
    const name = assertLabel(request.name, 'name', 128);
    const cert = parseCertificate(request.certificatePem);
    return { ...certificateClaim(factory, subjectDevice(cert.subject, factory, 'certificate'), cert), actor, name };
  },
  ca: (deps, claim) => issuingCa(deps, claim.factory, claim.subject.certificate),
  async admit(deps, claim) {
    if (await deps.store.isCertificateRetired(claim.subject.certificate.fingerprint256)) {
      throw conflict('certificate_retired', 'this certificate belonged to a device that was renewed or deleted: it is never accepted again');
    }
    await refuseTaken(deps, claim, false);
  },
  async record(deps, claim, ca, certificate) {
    const actor = by(claim.actor);
    const device = await insertEnrolledDevice(deps, { actor, claim, ca, certificate, via: 'certificate', name: claim.name, test: false, state: 'active', stateReason: null });
    return { device, certificatePem: certificate.pem, caCertificatePem: ca.certificatePem };
  },
};

export function enrollFromCertificate(deps: AuthorityDeps, actor: Actor, factory: Factory, request: Input['request']): Promise<Enrolled> {
  return enroll(deps, certificateEnrollment, { actor, factory, request });
}
