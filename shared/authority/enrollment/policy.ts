import { invalidInput } from '../../errors.js';
import { KEY_ALGORITHMS, OID, type CertificateInfo, type KeyAlgorithm, type KeyDescription } from '../../pki/index.js';
import type { DeviceCa, Factory, JitMode } from '../../store/types.js';
import type { AuthorityDeps } from '../context.js';

/**
 * The certificate policy every enrollment method passes (see method.ts): the uses a device
 * certificate may have, the key types its factory allows, its lifetime, its validity window.
 * Every field a factory leaves unset falls back to the configuration's pki section.
 */

/** The policy in force for one factory, defaults resolved. */
export interface CertificatePolicy {
  jitMode: JitMode;
  /** Default and maximum lifetime of an enrolled device certificate. */
  certMaxDays: number;
  /** Maximum lifetime of a test device certificate. */
  testCertMaxHours: number;
  keyTypes: readonly KeyAlgorithm[];
}

/**
 * The policy in force for one factory: its settings, narrowed by the operator's configuration. The
 * settings were checked against the configuration when they were made, but the configuration may
 * have been narrowed since; a factory never gets more than the configuration allows either way.
 */
export async function certificatePolicy(deps: Pick<AuthorityDeps, 'store' | 'policy'>, factoryId: string): Promise<CertificatePolicy> {
  const s = await deps.store.getFactorySettings(factoryId);
  const limits = operatorLimits(deps);
  return {
    jitMode: s?.jitMode ?? 'off',
    certMaxDays: Math.min(s?.certMaxDays ?? limits.certMaxDays, limits.certMaxDays),
    testCertMaxHours: Math.min(s?.testCertMaxHours ?? limits.testCertMaxHours, limits.testCertMaxHours),
    keyTypes: s?.keyTypes ? limits.keyTypes.filter((k) => s.keyTypes!.includes(k)) : limits.keyTypes,
  };
}

/** What the operator's configuration (pki.*) allows; a factory may narrow it, never widen it. */
export function operatorLimits(deps: Pick<AuthorityDeps, 'policy'>): Omit<CertificatePolicy, 'jitMode'> {
  return {
    certMaxDays: deps.policy.deviceCertDays,
    testCertMaxHours: deps.policy.testCertMaxHours,
    keyTypes: deps.policy.allowedKeyTypes ?? KEY_ALGORITHMS,
  };
}

/** The key usages a certificate asks for (a CSR) or has (a certificate issued elsewhere). */
export type UsageClaim =
  | { source: 'requested'; keyUsage?: string[]; extendedKeyUsage?: string[] }
  | { source: 'present'; isCa: boolean; keyUsage: string[]; extendedKeyUsage: string[] };

/**
 * A device certificate is a TLS client certificate that signs: digitalSignature, clientAuth, never
 * a CA. A CSR may leave the usages to the issuer (the profile sets them); a certificate must have them.
 */
export function checkUsage(usage: UsageClaim): void {
  if (usage.source === 'requested') {
    const { keyUsage, extendedKeyUsage } = usage;
    if (keyUsage && keyUsage.length > 0) {
      if (!keyUsage.includes('digitalSignature')) {
        throw invalidInput('csr_key_usage_invalid', 'the CSR requests a key usage without digitalSignature; a device certificate needs digitalSignature');
      }
      const forbidden = keyUsage.filter((u) => u === 'keyCertSign' || u === 'cRLSign');
      if (forbidden.length > 0) throw invalidInput('csr_key_usage_invalid', `the CSR requests ${forbidden.join(', ')}: a device certificate cannot sign certificates`);
    }
    if (extendedKeyUsage && extendedKeyUsage.length > 0 && !extendedKeyUsage.includes(OID.clientAuth)) {
      throw invalidInput('csr_key_usage_invalid', 'the CSR requests extended key usages without clientAuth; a device certificate is a TLS client certificate');
    }
    return;
  }
  if (usage.isCa) throw invalidInput('certificate_is_ca', 'a CA certificate cannot be a device certificate');
  if (!usage.extendedKeyUsage.includes(OID.clientAuth)) throw invalidInput('certificate_key_usage_invalid', 'the certificate lacks extended key usage clientAuth');
  if (usage.keyUsage.length > 0 && !usage.keyUsage.includes('digitalSignature')) {
    throw invalidInput('certificate_key_usage_invalid', 'the certificate lacks key usage digitalSignature');
  }
}

/** Refuses a key whose type the factory's policy does not allow. */
export function checkKeyType(policy: CertificatePolicy, key: KeyDescription, factory: Factory): void {
  if (!policy.keyTypes.includes(key.algorithm)) {
    const allowed = policy.keyTypes.length > 0 ? policy.keyTypes.join(', ') : "none (the factory's key types and pki.allowedKeyTypes have none in common)";
    throw invalidInput('key_type_not_allowed', `factory "${factory.name}" does not allow ${key.algorithm} device keys; allowed: ${allowed}`);
  }
}

/** How far ahead of this clock a certificate's notBefore may be (clocks are never perfectly in step). */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** A certificate issued elsewhere must be valid now. */
export function checkValidity(cert: CertificateInfo, now: number): void {
  if (cert.notAfter.getTime() <= now) throw invalidInput('certificate_expired', `the certificate expired on ${cert.notAfter.toISOString()}`);
  if (cert.notBefore.getTime() > now + CLOCK_SKEW_MS) throw invalidInput('certificate_not_yet_valid', `the certificate is valid only from ${cert.notBefore.toISOString()}`);
}

/** A device certificate from a factory's CA must end when its CA does, or before: past that, nothing can verify it. */
export function checkWithinCa(cert: CertificateInfo, ca: DeviceCa): void {
  if (cert.notAfter.getTime() > ca.notAfter) {
    throw invalidInput(
      'certificate_outlives_ca',
      `the certificate is valid until ${cert.notAfter.toISOString()}, after its CA expires (${new Date(ca.notAfter).toISOString()}); a device certificate cannot outlive its CA`,
    );
  }
}
