import crypto from 'node:crypto';
import { invalidInput, isTollgateError } from '../errors.js';
import { children, decodeTime, DerError, expectTag, readTlv, TAG, type Tlv } from './der.js';
import { decodeExtendedKeyUsage, decodeExtensions, decodeKeyUsage, decodeSubjectKeyIdentifier, type RawExtension } from './extensions.js';
import { OID } from './oids.js';
import { describePublicKey, publicKeyFingerprint, type KeyDescription } from './keys.js';
import { canonicalName, decodeName, type NameFields } from './names.js';
import { derToPem, readPemBlocks } from './pem.js';


/**
 * Certificate reading. node:crypto (OpenSSL) parses and verifies; the small DER walk only extracts
 * what node does not expose in structured form: name attributes, key usage bits and exact dates.
 */

export interface CertificateInfo {
  /** Normalised PEM of exactly this certificate (encoded on first read). */
  pem: string;
  der: Buffer;
  /** SHA-256 of the DER, lower-case hex without colons. */
  fingerprint256: string;
  /** Lower-case hex, as OpenSSL prints it (no sign byte). */
  serialNumber: string;
  subject: NameFields;
  /** The subject as OpenSSL compares names (see canonicalName): equal for names it takes as one. */
  subjectCanonical: string;
  issuer: NameFields;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** RFC 5280 names, e.g. ['digitalSignature', 'keyCertSign', 'cRLSign']; empty if the extension is absent. */
  keyUsage: string[];
  /** Purpose OIDs, e.g. '1.3.6.1.5.5.7.3.2'; empty if the extension is absent. */
  extendedKeyUsage: string[];
  /** OIDs of the extensions marked critical: a relying party must refuse the certificate if it does not know one. */
  criticalExtensions: string[];
  /** Hex subjectKeyIdentifier, if the certificate has one (issuers' SKIs become their children's AKIs). */
  subjectKeyIdentifier?: string;
  publicKey: crypto.KeyObject;
  /** SHA-256 of the SubjectPublicKeyInfo (keys.ts), computed on first read: the key export costs more than the rest of the reading. */
  publicKeyFingerprint: string;
  key: KeyDescription;
  /** The node object, for verify() / checkIssued(). */
  x509: crypto.X509Certificate;
}

/** Parses a PEM text holding exactly one certificate. */
export function parseCertificate(pem: string): CertificateInfo {
  const blocks = readPemBlocks(pem, ['CERTIFICATE']);
  if (blocks.length !== 1) {
    throw invalidInput('certificate_invalid', `expected exactly one certificate, found ${blocks.length}; send the leaf certificate alone`);
  }
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate((blocks[0] as { der: Buffer }).der);
  } catch {
    throw invalidInput('certificate_invalid', 'the CERTIFICATE block is not a valid X.509 certificate');
  }
  return certificateInfoFromX509(cert);
}

interface TbsFields {
  issuer: Tlv;
  validity: Tlv;
  subject: Tlv;
  extensions: RawExtension[];
}

/** Locates the fields of TBSCertificate (RFC 5280 4.1) by position. */
function tbsFields(der: Buffer): TbsFields {
  const certificate = expectTag(readTlv(der, 0), TAG.SEQUENCE, 'certificate');
  const tbs = expectTag(children(certificate)[0], TAG.SEQUENCE, 'tbsCertificate');
  const fields = children(tbs);
  // version is an optional explicit [0]; v1 certificates omit it and everything shifts by one.
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = expectTag(fields[base + 2], TAG.SEQUENCE, 'issuer');
  const validity = expectTag(fields[base + 3], TAG.SEQUENCE, 'validity');
  const subject = expectTag(fields[base + 4], TAG.SEQUENCE, 'subject');
  const explicit = fields.slice(base + 6).find((f) => f.tag === 0xa3);
  const extensions = explicit ? decodeExtensions(expectTag(children(explicit)[0], TAG.SEQUENCE, 'extensions')) : [];
  return { issuer, validity, subject, extensions };
}

export function certificateInfoFromX509(cert: crypto.X509Certificate): CertificateInfo {
  const der = cert.raw;
  let fields: Omit<CertificateInfo, 'pem' | 'der' | 'fingerprint256' | 'serialNumber' | 'isCa' | 'publicKey' | 'publicKeyFingerprint' | 'key' | 'x509'>;
  try {
    const tbs = tbsFields(der);
    const [notBefore, notAfter] = children(tbs.validity).map(decodeTime);
    if (!notBefore || !notAfter) throw new DerError('validity must hold notBefore and notAfter');
    const ext = (oid: string) => tbs.extensions.find((e) => e.oid === oid)?.value;
    const ku = ext(OID.keyUsage);
    const eku = ext(OID.extKeyUsage);
    const ski = ext(OID.subjectKeyIdentifier);
    fields = {
      subject: decodeName(tbs.subject, 'subject'),
      subjectCanonical: canonicalName(tbs.subject),
      issuer: decodeName(tbs.issuer, 'issuer'),
      notBefore,
      notAfter,
      keyUsage: ku ? decodeKeyUsage(ku) : [],
      extendedKeyUsage: eku ? decodeExtendedKeyUsage(eku) : [],
      criticalExtensions: tbs.extensions.filter((e) => e.critical).map((e) => e.oid),
      ...(ski ? { subjectKeyIdentifier: decodeSubjectKeyIdentifier(ski) } : {}),
    };
  } catch (e) {
    if (e instanceof DerError) throw invalidInput('certificate_invalid', `the certificate is malformed: ${e.message}`);
    throw e;
  }

  let publicKey: crypto.KeyObject;
  try {
    publicKey = cert.publicKey;
  } catch {
    throw invalidInput('key_type_not_allowed', 'the certificate public key uses an algorithm this platform cannot read; expected EC P-256, EC P-384 or RSA');
  }
  let key: KeyDescription;
  try {
    key = describePublicKey(publicKey);
  } catch (e) {
    // Say whose key it is: the same code is raised for CSRs and signing keys.
    if (isTollgateError(e)) throw invalidInput(e.code, `certificate public key: ${e.message}`);
    throw e;
  }

  // The PEM and the key fingerprint are for enrollment and the admin side; the gateway judges a
  // certificate on every new connection without them, so they are worked out on first read (as
  // getters, so that a spread copy still carries their values).
  let pem: string | undefined;
  let spkiFingerprint: string | undefined;
  return {
    get pem() {
      return (pem ??= derToPem(der, 'CERTIFICATE'));
    },
    der,
    fingerprint256: crypto.createHash('sha256').update(der).digest('hex'),
    serialNumber: cert.serialNumber.toLowerCase(),
    ...fields,
    isCa: cert.ca,
    publicKey,
    get publicKeyFingerprint() {
      return (spkiFingerprint ??= publicKeyFingerprint(publicKey));
    },
    key,
    x509: cert,
  };
}

/** True if `cert` is signed by `issuer`'s key, and `issuer` is a CA whose subject is `cert`'s issuer. */
export function isIssuedBy(cert: CertificateInfo, issuer: CertificateInfo): boolean {
  if (!issuer.isCa) return false;
  if (issuer.keyUsage.length > 0 && !issuer.keyUsage.includes('keyCertSign')) return false;
  try {
    // checkIssued compares the names the way OpenSSL's chain building does (canonical form) and
    // the key identifiers; verify() checks the signature itself.
    return cert.x509.checkIssued(issuer.x509) && cert.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
