import { X509Certificate } from 'node:crypto';
import { isTollgateError } from '../../errors.js';
import { certificateInfoFromX509, isIssuedBy, type CertificateInfo } from '../../pki/index.js';
import type { DeviceAuthView, DeviceCa, Factory, JitMode } from '../../store/types.js';
import type { AuthorityDeps } from '../context.js';
import { DEVICE_UUID } from '../names.js';
import { certificateClaim } from './certificate.js';
import { enroll, insertEnrolledDevice, type EnrollmentClaim, type EnrollmentMethod } from './method.js';

/**
 * Just-in-time registration: an unknown device whose certificate one of its factory's active
 * external CAs issued is enrolled on first contact, when that factory has opted in. Never a UUID
 * that was deleted (identifyDevice refuses those before asking). TLS has already verified
 * the chain; this finds which CA of which factory issued it and holds the subject to that factory
 * (OU = factory name, CN = a UUID), so a factory's CA cannot register devices into another factory.
 * The certificate then passes the same policy as any other enrollment (method.ts).
 */

interface Candidate {
  cert: CertificateInfo;
  uuid: string;
  factory: Factory;
  jitMode: Exclude<JitMode, 'off'>;
  ca: DeviceCa;
}

interface Claim extends EnrollmentClaim {
  candidate: Candidate;
}

/** The factory and CA a certificate would be registered under, or null when JIT does not apply to it. */
async function candidate(deps: AuthorityDeps, der: Buffer): Promise<Candidate | null> {
  let cert: CertificateInfo;
  try {
    cert = certificateInfoFromX509(new X509Certificate(der));
  } catch (e) {
    if (isTollgateError(e)) return null;
    throw e;
  }
  const uuid = cert.subject.commonName;
  const factoryName = cert.subject.organizationalUnit;
  if (uuid === undefined || !DEVICE_UUID.test(uuid) || factoryName === undefined) return null;
  const factory = await deps.store.getFactoryByName(factoryName);
  if (!factory) return null;
  const settings = await deps.store.getFactorySettings(factory.id);
  if (!settings || settings.jitMode === 'off') return null;
  // Only the factory's own (external) CAs: what its online CA issued, Tollgate issued at an explicit
  // enrollment (test devices among them), so an unknown device with such a certificate is no new
  // device. Disabled CAs register nobody new; revoked ones nobody at all.
  const cas = (await deps.store.listDeviceCas({ factoryId: factory.id })).filter((c) => c.state === 'active' && c.kind === 'external');
  const ca = cas.find((c) => isIssuedBy(cert, certificateInfoFromX509(new X509Certificate(c.certificatePem))));
  return ca ? { cert, uuid, factory, jitMode: settings.jitMode, ca } : null;
}

export const jitEnrollment: EnrollmentMethod<Candidate, Claim, DeviceAuthView | null> = {
  via: 'jit',
  claim: async (_deps, c) => ({ ...certificateClaim(c.factory, c.uuid, c.cert), candidate: c }),
  ca: async (_deps, claim) => claim.candidate.ca,
  async record(deps, claim, ca, certificate) {
    const { jitMode } = claim.candidate;
    try {
      await insertEnrolledDevice(deps, {
        actor: { actor: `device:${claim.uuid}`, source: null },
        claim,
        ca,
        certificate,
        via: 'jit',
        name: null,
        test: false,
        state: jitMode,
        stateReason: jitMode === 'pending' ? 'registered just in time; awaiting activation' : null,
      });
    } catch (e) {
      // Two first contacts at once: the other one registered it; judge the device as it now stands.
      if (!(isTollgateError(e) && e.code === 'device_exists')) throw e;
    }
    return deps.store.getDevice(claim.uuid);
  },
};

/** Registers the device `der` names, or returns null when JIT does not apply (the caller answers device_unknown). */
export async function registerJustInTime(deps: AuthorityDeps, der: Buffer): Promise<DeviceAuthView | null> {
  const c = await candidate(deps, der);
  return c ? enroll(deps, jitEnrollment, c) : null;
}
