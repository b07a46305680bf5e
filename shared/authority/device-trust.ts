import { X509Certificate } from 'node:crypto';
import { certificateInfoFromX509, isIssuedBy, OID, parseCertificate, type CertificateInfo } from '../pki/index.js';
import type { DeviceCa, Store } from '../store/types.js';
import type { RefusalReason } from './refusals.js';

/** Extensions a device certificate may mark critical: the ones whose meaning is checked here or at enrollment. */
const UNDERSTOOD_CRITICAL = new Set<string>([
  OID.keyUsage,
  OID.extKeyUsage,
  OID.basicConstraints,
  OID.subjectAltName,
  OID.certificatePolicies,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

/** A device certificate the gateway accepts as presented, and the CA that issued it. */
export interface TrustedCertificate {
  cert: CertificateInfo;
  ca: DeviceCa;
  /** Until when (ms) this verdict holds: the earlier end of the certificate's and its CA's validity. */
  validUntil: number;
}

/** What a refused certificate proves when one of its factory's CAs did sign it (a CA revoked or expired, say). */
export interface IssuedRefusal {
  factoryId: string;
  /** The certificate's CN: the device it names. */
  commonName: string | undefined;
  fingerprint256: string;
}

/** The verdict on a TLS client's certificate: trusted, or the refusal (refusals.ts) and what is particular to it. */
export type DeviceCertificateVerdict = { trusted: TrustedCertificate } | ({ refusal: RefusalReason; detail?: string } & Partial<IssuedRefusal>);

/**
 * Whether a TLS client's certificate is a device certificate the gateway trusts, decided here
 * rather than by OpenSSL's trust store. One store would hold every factory's CAs, and OpenSSL picks
 * an issuer by name (and key identifier, which anyone can copy): a CA of one factory named like
 * another factory's would be tried, and fail, for that factory's devices. So a certificate is judged
 * against the CAs of the factory it names (its OU) only, trying each of them by signature, as
 * the store holds them now: a CA registered a moment ago counts from the next connection, a revoked
 * one no longer does. Devices are issued directly by a registered CA (enrollment, renewal and
 * just-in-time registration all require it), so there is no chain to build.
 *
 * The DER the client sent is read afresh here, not taken from the handshake's own reading
 * (TLSSocket.getPeerX509Certificate): that one measured cheaper per connection, but under sustained
 * new connections the gateway's memory grew by about 9 KiB for each (bench/, suite memory).
 */
export async function verifyDeviceCertificate(store: Store, der: Buffer, now: number): Promise<DeviceCertificateVerdict> {
  let cert: CertificateInfo;
  try {
    cert = certificateInfoFromX509(new X509Certificate(der));
  } catch {
    // TLS read it, but it is not a certificate Tollgate can read (two CNs, say): nobody's device.
    return { refusal: 'certificate_invalid' };
  }
  const ca = await issuingCa(store, cert);
  if (ca === null) return { refusal: 'certificate_untrusted', detail: 'no CA of the factory it names (OU) signed it' };
  // Signed by one of the factory's CAs: a refusal from here on is that factory's to see.
  const issued: IssuedRefusal = { factoryId: ca.factoryId, commonName: cert.subject.commonName, fingerprint256: cert.fingerprint256 };
  if (ca.state === 'revoked') return { ...issued, refusal: 'ca_revoked' };
  const caCert = parsedCa(ca);
  if (caCert.notBefore.getTime() > now) return { ...issued, refusal: 'ca_not_yet_valid', detail: `valid only from ${caCert.notBefore.toISOString()}` };
  if (ca.notAfter <= now) return { ...issued, refusal: 'ca_expired', detail: `it expired on ${new Date(ca.notAfter).toISOString()}` };
  if (cert.notBefore.getTime() > now) return { ...issued, refusal: 'certificate_not_yet_valid' };
  if (cert.notAfter.getTime() <= now) return { ...issued, refusal: 'certificate_expired' };
  if (cert.extendedKeyUsage.length > 0 && !cert.extendedKeyUsage.includes(OID.clientAuth)) return { ...issued, refusal: 'certificate_purpose_invalid' };
  if (cert.keyUsage.length > 0 && !cert.keyUsage.includes('digitalSignature') && !cert.keyUsage.includes('keyAgreement')) {
    return { ...issued, refusal: 'certificate_purpose_invalid', detail: 'key usage digitalSignature' };
  }
  const unknown = cert.criticalExtensions.filter((oid) => !UNDERSTOOD_CRITICAL.has(oid));
  if (unknown.length > 0) return { ...issued, refusal: 'certificate_rejected', detail: `it has a critical extension the gateway does not understand (${unknown[0]})` };
  return { trusted: { cert, ca, validUntil: Math.min(cert.notAfter.getTime(), ca.notAfter) } };
}

/** The CA of the certificate's own factory that signed it, if any (revoked ones too, to say so). */
async function issuingCa(store: Store, cert: CertificateInfo): Promise<DeviceCa | null> {
  const factoryName = cert.subject.organizationalUnit;
  if (factoryName === undefined) return null;
  const factory = await store.getFactoryByName(factoryName);
  if (!factory) return null;
  const cas = await store.listDeviceCas({ factoryId: factory.id });
  // A live CA first: a revoked one may share a name and key with its replacement.
  const signers = cas.filter((ca) => isIssuedBy(cert, parsedCa(ca)));
  return signers.find((ca) => ca.state !== 'revoked') ?? signers[0] ?? null;
}

/** CA certificates parsed once: they are read for every new connection. */
const parsed = new Map<string, CertificateInfo>();
const PARSED_LIMIT = 1024;

function parsedCa(ca: DeviceCa): CertificateInfo {
  let info = parsed.get(ca.fingerprint256);
  if (!info) {
    info = parseCertificate(ca.certificatePem);
    if (parsed.size >= PARSED_LIMIT) parsed.clear();
    parsed.set(ca.fingerprint256, info);
  }
  return info;
}
