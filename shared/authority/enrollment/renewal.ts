import { conflict, invalidInput } from '../../errors.js';
import { parseCsr } from '../../pki/index.js';
import type { DeviceAuthView } from '../../store/types.js';
import type { AuthorityDeps } from '../context.js';
import { commit } from '../events.js';
import { recordRefusal } from '../refusals.js';
import { requireAnnouncedKey } from '../next-key.js';
import { enroll, type EnrollmentClaim, type EnrollmentMethod } from './method.js';

/**
 * Re-enrollment of an identified device with a new certificate (RFC 7030, "Simple Re-enrollment"):
 * the subject stays what it was, the key may be new, and the device's own online CA signs, for the
 * factory's device certificate lifetime.
 *
 * The device row then holds the new certificate while the one the device authenticated with stays
 * accepted until the new one is first used (identifyDevice retires it then). A certificate from an
 * earlier rotation that the device never picked up is retired at once: only the certificate the
 * device proved it holds, and the one just issued, remain usable.
 */

export interface Renewed {
  certificatePem: string;
  caCertificatePem: string;
  notAfter: Date;
}

interface Input {
  device: DeviceAuthView;
  /** Fingerprint of the certificate the device authenticated this request with. */
  presentedFingerprint: string;
  csrPem: unknown;
  source: string | null;
}

interface Claim extends EnrollmentClaim {
  input: Input;
  /** The CSR key's fingerprint, held to the next key the device announced, if any. */
  keyFingerprint: string;
}

export const renewal: EnrollmentMethod<Input, Claim, Renewed> = {
  via: 'renewal',
  async claim(_deps, input) {
    const { device, csrPem } = input;
    if (typeof csrPem !== 'string') throw invalidInput('csr_missing', 'a PKCS#10 certificate signing request is required');
    const csr = await parseCsr(csrPem);
    // Re-enrollment renews an identity, it never changes one.
    if (csr.subject.commonName !== device.uuid || csr.subject.organizationalUnit !== device.factoryName) {
      throw invalidInput('subject_mismatch', `the CSR subject must be the current certificate's: CN=${device.uuid}, OU=${device.factoryName}`);
    }
    return {
      input,
      keyFingerprint: csr.publicKeyFingerprint,
      factory: { id: device.factoryId, name: device.factoryName, createdAt: 0 },
      uuid: device.uuid,
      key: csr.key,
      usage: { source: 'requested', keyUsage: csr.requestedKeyUsage, extendedKeyUsage: csr.requestedExtendedKeyUsage },
      subject: { publicKey: csr.publicKey },
    };
  },
  async ca(deps, claim) {
    const ca = await deps.store.getDeviceCa(claim.input.device.caId);
    if (!ca || ca.kind !== 'online' || ca.keyRef === null) {
      throw conflict('reenroll_not_supported', 'this device was enrolled from an external CA; its factory issues its certificates');
    }
    if (ca.state !== 'active') throw conflict('ca_not_active', `the device's CA is ${ca.state}: it issues no new certificates`);
    return ca;
  },
  async admit(deps, claim) {
    // Test certificates are short-lived on purpose (CI watches them expire); renewing one would turn
    // a test device into a permanent one. Issue a new test device instead.
    if (claim.input.device.isTest) throw conflict('test_certificate_not_renewable', 'a test device certificate is not renewed; issue a new test device');
    await requireAnnouncedKey(deps, claim.input.device, claim.keyFingerprint);
  },
  async record(deps, claim, ca, cert) {
    const { device, presentedFingerprint, source } = claim.input;
    const retire = [device.certificateFingerprint, device.previousCertificateFingerprint].filter(
      (fp): fp is string => fp !== null && fp !== presentedFingerprint,
    );
    const rotation = {
      certificatePem: cert.pem,
      certificateFingerprint: cert.fingerprint256,
      publicKeyFingerprint: cert.publicKeyFingerprint,
      notAfter: cert.notAfter.getTime(),
      previousCertificateFingerprint: presentedFingerprint,
      retire,
    };
    const details = {
      previousFingerprint256: presentedFingerprint,
      fingerprint256: cert.fingerprint256,
      newKey: cert.publicKeyFingerprint !== device.publicKeyFingerprint,
      notAfter: cert.notAfter.toISOString(),
      ...(retire.length > 0 ? { retired: retire } : {}),
    };
    await commit(deps, { type: 'device.renewed', actor: `device:${device.uuid}`, source, factoryId: device.factoryId, target: device.uuid, details }, (audit) =>
      deps.store.rotateDeviceCertificate(device.uuid, rotation, audit),
    );
    return { certificatePem: cert.pem, caCertificatePem: ca.certificatePem, notAfter: cert.notAfter };
  },
};

/** Renews the device's certificate; a refusal is recorded in the device's history as `device.renew_refused`. */
export async function renewDeviceCertificate(
  deps: AuthorityDeps,
  device: DeviceAuthView,
  presentedFingerprint: string,
  csrPem: unknown,
  source: string | null,
): Promise<Renewed> {
  try {
    return await enroll(deps, renewal, { device, presentedFingerprint, csrPem, source });
  } catch (e) {
    await recordRefusal(deps, e, {
      type: 'device.renew_refused',
      actor: `device:${device.uuid}`,
      source,
      factoryId: device.factoryId,
      target: device.uuid,
      details: { fingerprint256: presentedFingerprint },
    });
    throw e;
  }
}
