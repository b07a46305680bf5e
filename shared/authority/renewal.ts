import { conflict, invalidInput } from '../errors.js';
import { issueCertificate, parseCertificate, parseCsr } from '../pki/index.js';
import type { DeviceAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import { checkRequestedUsage } from './devices.js';
import { certificatePolicy, checkKeyType } from './factory-settings.js';
import { requireAnnouncedKey } from './next-key.js';

const DAY = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;

export interface Renewed {
  certificatePem: string;
  caCertificatePem: string;
  notAfter: Date;
}

/**
 * Re-enrollment of an identified device with a new certificate (RFC 7030, "Simple Re-enrollment"):
 * the subject stays what it was, the key may be new, and the device's own online CA signs.
 *
 * The device row then holds the new certificate while the one the device authenticated with stays
 * accepted until the new one is first used (identifyDevice retires it then). A certificate from an
 * earlier rotation that the device never picked up is retired at once: only the certificate the
 * device proved it holds, and the one just issued, remain usable.
 */
export async function renewDeviceCertificate(
  deps: AuthorityDeps,
  device: DeviceAuthView,
  presentedFingerprint: string,
  csrPem: unknown,
  source: string | null,
): Promise<Renewed> {
  if (typeof csrPem !== 'string') throw invalidInput('csr_missing', 'a PKCS#10 certificate signing request is required');
  const csr = await parseCsr(csrPem);
  // Re-enrollment renews an identity, it never changes one.
  if (csr.subject.commonName !== device.uuid || csr.subject.organizationalUnit !== device.factoryName) {
    throw invalidInput(
      'subject_mismatch',
      `the CSR subject must be the current certificate's: CN=${device.uuid}, OU=${device.factoryName}`,
    );
  }
  checkRequestedUsage(csr.requestedKeyUsage, csr.requestedExtendedKeyUsage);
  // Test certificates are short-lived on purpose (CI watches them expire); renewing one would turn
  // a test device into a permanent one. Issue a new test device instead.
  if (device.isTest) {
    throw conflict('test_certificate_not_renewable', 'a test device certificate is not renewed; issue a new test device');
  }

  const ca = await deps.store.getDeviceCa(device.caId);
  if (!ca || ca.kind !== 'online' || ca.keyRef === null) {
    throw conflict('reenroll_not_supported', 'this device was enrolled from an external CA; its factory issues its certificates');
  }
  if (ca.state !== 'active') throw conflict('ca_not_active', `the device's CA is ${ca.state}: it issues no new certificates`);

  const policy = await certificatePolicy(deps, device.factoryId);
  const factory = { id: device.factoryId, name: device.factoryName, createdAt: 0 };
  checkKeyType(policy, csr.key, factory);
  await requireAnnouncedKey(deps, device, csr.publicKeyFingerprint);

  const now = deps.now();
  // Same policy as enrollment: the factory's device certificate lifetime.
  const lifetimeMs = policy.certMaxDays * DAY;
  const notAfter = Math.min(now + lifetimeMs, ca.notAfter);
  const certificatePem = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: device.uuid, organizationalUnit: device.factoryName },
    publicKey: csr.publicKey,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    issuer: { certificatePem: ca.certificatePem, privateKeyPem: deps.keys.get(ca.keyRef) },
  });
  const cert = parseCertificate(certificatePem);

  const retire = [device.certificateFingerprint, device.previousCertificateFingerprint].filter(
    (fp): fp is string => fp !== null && fp !== presentedFingerprint,
  );
  await deps.store.rotateDeviceCertificate(
    device.uuid,
    {
      certificatePem: cert.pem,
      certificateFingerprint: cert.fingerprint256,
      publicKeyFingerprint: cert.publicKeyFingerprint,
      notAfter: cert.notAfter.getTime(),
      previousCertificateFingerprint: presentedFingerprint,
      retire,
    },
    {
      actor: `device:${device.uuid}`,
      action: 'device.renewed',
      outcome: 'success',
      factoryId: device.factoryId,
      target: device.uuid,
      source,
      details: {
        previousFingerprint256: presentedFingerprint,
        fingerprint256: cert.fingerprint256,
        newKey: cert.publicKeyFingerprint !== device.publicKeyFingerprint,
        notAfter: cert.notAfter.toISOString(),
        ...(retire.length > 0 ? { retired: retire } : {}),
      },
    },
  );
  return { certificatePem: cert.pem, caCertificatePem: ca.certificatePem, notAfter: cert.notAfter };
}
