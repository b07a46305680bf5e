import crypto from 'node:crypto';
import { invalidInput, isTollgateError } from '../errors.js';
import { KEY_USAGE_NAMES, type KeyUsageName } from './extensions.js';
import { describePublicKey, toPublicKey, type KeyDescription } from './keys.js';
import { derToPem } from './pem.js';
import { x509 } from './peculiar.js';
import { PROFILES, profileExtensions, type Profile } from './profiles.js';
import { importPublicKey, importSigner, sameKey, type Signer } from './signer.js';
import { subjectName, type SubjectFields } from './subject.js';
import { parseCertificate } from './x509.js';

export type { Profile } from './profiles.js';
export type { SubjectFields } from './subject.js';

/** Certificate and CSR creation, via @peculiar/x509 on node's WebCrypto. */

export interface IssueRequest {
  profile: Profile;
  subject: SubjectFields;
  publicKey: crypto.KeyObject;
  /** Default: now - 5 minutes, for devices whose clocks run a little behind. */
  notBefore?: Date;
  notAfter: Date;
  /** Omitted: self-signed with `selfSignPrivateKeyPem`. */
  issuer?: { certificatePem: string; privateKeyPem: string };
  /** Required when `issuer` is omitted; must be the private half of `publicKey`. */
  selfSignPrivateKeyPem?: string;
  /** tls-server subject alternative names. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Hex; default 16 random bytes, positive. */
  serialNumber?: string;
}

const CLOCK_SKEW_MS = 5 * 60_000;
/** RFC 5280 4.1.2.2: at most 20 octets, positive. */
const MAX_SERIAL_OCTETS = 20;

/** Re-raises a policy error with the name of the key it concerns. */
function describe(key: crypto.KeyObject, what: string): KeyDescription {
  try {
    return describePublicKey(key);
  } catch (e) {
    if (isTollgateError(e)) throw invalidInput(e.code, `${what}: ${e.message}`);
    throw e;
  }
}

function serialNumber(requested: string | undefined): string {
  if (requested === undefined) {
    const bytes = crypto.randomBytes(16);
    // Clear the top bit so the INTEGER is positive without a sign byte, and keep the first byte
    // non-zero so the encoding keeps all 16 bytes (DER forbids a leading zero byte).
    bytes[0] = ((bytes[0] as number) & 0x7f) || 0x01;
    return bytes.toString('hex');
  }
  if (typeof requested !== 'string' || !/^[0-9a-f]{1,40}$/i.test(requested)) {
    throw invalidInput('serial_number_invalid', 'serialNumber must be 1-40 hexadecimal digits');
  }
  let hex = requested.toLowerCase().replace(/^0+/, '');
  if (hex.length === 0) throw invalidInput('serial_number_invalid', 'serialNumber must be positive; zero is not allowed');
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const octets = hex.length / 2 + (parseInt(hex.slice(0, 1), 16) >= 8 ? 1 : 0);
  if (octets > MAX_SERIAL_OCTETS) {
    throw invalidInput('serial_number_invalid', `serialNumber needs ${octets} octets as a positive INTEGER; RFC 5280 allows at most ${MAX_SERIAL_OCTETS}`);
  }
  return hex;
}

function validity(req: IssueRequest): { notBefore: Date; notAfter: Date } {
  const isDate = (d: unknown): d is Date => d instanceof Date && !Number.isNaN(d.getTime());
  if (!isDate(req.notAfter)) throw invalidInput('validity_invalid', 'notAfter must be a valid Date');
  if (req.notBefore !== undefined && !isDate(req.notBefore)) throw invalidInput('validity_invalid', 'notBefore must be a valid Date');
  const notBefore = req.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  if (req.notAfter.getTime() <= notBefore.getTime()) {
    throw invalidInput('validity_invalid', `notAfter (${req.notAfter.toISOString()}) must be later than notBefore (${notBefore.toISOString()})`);
  }
  return { notBefore, notAfter: req.notAfter };
}

interface Signing {
  signer: Signer;
  issuerName: InstanceType<typeof x509.Name>;
  /** Set when another certificate issues: its key identifier and expiry. */
  authorityKeyId?: string;
  issuerNotAfter?: Date;
}

async function issuerSigning(issuer: NonNullable<IssueRequest['issuer']>): Promise<Signing> {
  let info;
  try {
    info = parseCertificate(issuer.certificatePem);
  } catch (e) {
    if (isTollgateError(e)) throw invalidInput(e.code, `issuer certificate: ${e.message}`);
    throw e;
  }
  if (!info.isCa || (info.keyUsage.length > 0 && !info.keyUsage.includes('keyCertSign'))) {
    throw invalidInput('issuer_not_ca', 'the issuer certificate is not a CA certificate (basicConstraints CA=true and keyUsage keyCertSign are required)');
  }
  const signer = await importSigner(issuer.privateKeyPem, 'issuer private key');
  describe(signer.publicKey, 'issuer private key');
  if (!sameKey(signer.publicKey, info.publicKey)) {
    throw invalidInput('issuer_key_mismatch', 'the issuer private key does not belong to the issuer certificate');
  }
  // The AKI must repeat the issuer's own SKI byte for byte, or chain builders that match on key
  // identifiers (OpenSSL among them) will not find the issuer. Compute it only if the issuer has none.
  const authorityKeyId =
    info.subjectKeyIdentifier ?? (await x509.SubjectKeyIdentifierExtension.create(info.publicKey.export({ type: 'spki', format: 'der' }))).keyId;
  // Re-encoding the issuer's subject from DER keeps each attribute's string type, so the issued
  // certificate's issuer field matches the CA's subject exactly.
  const issuerName = new x509.X509Certificate(info.der).subjectName;
  return { signer, issuerName, authorityKeyId, issuerNotAfter: info.notAfter };
}

async function selfSigning(req: IssueRequest, name: InstanceType<typeof x509.Name>): Promise<Signing> {
  if (req.selfSignPrivateKeyPem === undefined) {
    throw invalidInput('issuer_missing', 'either issuer (certificate and key) or selfSignPrivateKeyPem is required');
  }
  const signer = await importSigner(req.selfSignPrivateKeyPem, 'self-signing private key');
  if (!sameKey(signer.publicKey, toPublicKey(req.publicKey))) {
    throw invalidInput('signing_key_mismatch', 'selfSignPrivateKeyPem is not the private key of publicKey; a self-signed certificate is signed by its own key');
  }
  return { signer, issuerName: name };
}

export async function issueCertificate(req: IssueRequest): Promise<string> {
  if (!PROFILES.includes(req.profile)) {
    throw invalidInput('profile_invalid', `unknown certificate profile "${String(req.profile)}"; expected one of ${PROFILES.join(', ')}`);
  }
  if (req.issuer && req.selfSignPrivateKeyPem !== undefined) {
    throw invalidInput('issuer_ambiguous', 'give either issuer or selfSignPrivateKeyPem, not both');
  }
  if (req.profile === 'root-ca' && req.issuer) {
    throw invalidInput('profile_invalid', 'a root-ca certificate is self-signed; omit issuer (use device-ca for a CA below a root)');
  }
  const subjectKey = describe(toPublicKey(req.publicKey), 'subject public key');
  const name = subjectName(req.subject);
  const { notBefore, notAfter } = validity(req);
  const serial = serialNumber(req.serialNumber);
  const signing = req.issuer ? await issuerSigning(req.issuer) : await selfSigning(req, name);
  if (!req.issuer) describe(signing.signer.publicKey, 'self-signing private key');
  if (signing.issuerNotAfter && notAfter.getTime() > signing.issuerNotAfter.getTime()) {
    throw invalidInput(
      'validity_exceeds_issuer',
      `notAfter ${notAfter.toISOString()} is after the issuer certificate expires (${signing.issuerNotAfter.toISOString()}); a certificate cannot outlive its issuer`,
    );
  }

  const subjectSpki = toPublicKey(req.publicKey).export({ type: 'spki', format: 'der' });
  const extensions = await profileExtensions({
    profile: req.profile,
    subjectKey,
    subjectSpki,
    ...(signing.authorityKeyId !== undefined ? { authorityKeyId: signing.authorityKeyId } : {}),
    ...(req.dnsNames !== undefined ? { dnsNames: req.dnsNames } : {}),
    ...(req.ipAddresses !== undefined ? { ipAddresses: req.ipAddresses } : {}),
  });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: name,
    issuer: signing.issuerName,
    notBefore,
    notAfter,
    publicKey: new Uint8Array(subjectSpki),
    signingKey: signing.signer.privateKey,
    signingAlgorithm: signing.signer.signingAlgorithm,
    extensions,
  });
  return derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE');
}

function keyUsageFlags(names: string[]): number {
  let flags = 0;
  for (const name of names) {
    const bit = KEY_USAGE_NAMES.indexOf(name as KeyUsageName);
    if (bit < 0) throw invalidInput('key_usage_invalid', `unknown key usage "${name}"; expected RFC 5280 names such as ${KEY_USAGE_NAMES.join(', ')}`);
    // The library's flag values are 1 << bit in RFC 5280 order.
    flags |= 1 << bit;
  }
  return flags;
}

/**
 * A PKCS#10 CSR (PEM) for a key pair, with CN/OU/O and an optional keyUsage / extendedKeyUsage
 * extension request. For tests, CI and the CLI; applies no key policy, so weak-key CSRs can be
 * produced to test their refusal.
 */
export async function createCsr(opts: {
  subject: SubjectFields;
  privateKeyPem: string;
  publicKeyPem: string;
  keyUsage?: string[];
  extendedKeyUsage?: string[];
}): Promise<string> {
  const name = subjectName(opts.subject);
  const signer = await importSigner(opts.privateKeyPem, 'CSR private key');
  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey(opts.publicKeyPem);
  } catch {
    throw invalidInput('public_key_invalid', 'publicKeyPem is not a readable PEM public key (SPKI expected)');
  }
  if (!sameKey(signer.publicKey, publicKey)) throw invalidInput('signing_key_mismatch', 'privateKeyPem and publicKeyPem are not one key pair');

  const extensions: x509.Extension[] = [];
  if (opts.keyUsage && opts.keyUsage.length > 0) extensions.push(new x509.KeyUsagesExtension(keyUsageFlags(opts.keyUsage), true));
  if (opts.extendedKeyUsage && opts.extendedKeyUsage.length > 0) {
    for (const oid of opts.extendedKeyUsage) {
      if (!/^[0-2](?:\.(?:0|[1-9]\d*))+$/.test(oid)) throw invalidInput('key_usage_invalid', `extended key usage "${oid}" is not a dotted OID`);
    }
    extensions.push(new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsage));
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: { privateKey: signer.privateKey, publicKey: await importPublicKey(publicKey) },
    signingAlgorithm: signer.signingAlgorithm,
    ...(extensions.length > 0 ? { extensions } : {}),
  });
  return derToPem(new Uint8Array(csr.rawData), 'CERTIFICATE REQUEST');
}
