import crypto from 'node:crypto';
import { invalidInput, isTollgateError } from '../errors.js';
import { children, DerError, expectTag, readTlv, TAG } from './der.js';
import { decodeExtendedKeyUsage, decodeKeyUsage } from './extensions.js';
import { OID } from './oids.js';
import { describePublicKey, publicKeyFingerprint, type KeyDescription } from './keys.js';
import { decodeName, type NameFields } from './names.js';
import { readPemBlocks } from './pem.js';
import { x509 } from './peculiar.js';

/** PKCS#10 reading: structure and signature via @peculiar/x509, fields via the DER walk. */

export interface CsrInfo {
  /** Normalised PEM. */
  pem: string;
  subject: NameFields;
  publicKey: crypto.KeyObject;
  publicKeyFingerprint: string;
  key: KeyDescription;
  /** From the extensionRequest attribute, if it asks for a keyUsage. */
  requestedKeyUsage?: string[];
  /** Purpose OIDs from the extensionRequest attribute, if it asks for an extendedKeyUsage. */
  requestedExtendedKeyUsage?: string[];
}

/** Older tools (Windows certreq, Java keytool) still write the "NEW" label. */
const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

function csrInvalid(message: string): never {
  throw invalidInput('csr_invalid', message);
}

/**
 * Parses a PKCS#10 CSR (PEM) and verifies its self-signature, the proof that the requester holds
 * the private key. The key policy is applied before the signature is checked, so a device with a
 * weak or unsupported key learns that, rather than a vaguer signature error.
 */
export async function parseCsr(pem: string): Promise<CsrInfo> {
  const blocks = readPemBlocks(pem, CSR_LABELS);
  if (blocks.length !== 1) csrInvalid(`expected exactly one CERTIFICATE REQUEST block, found ${blocks.length}`);
  const block = blocks[0] as { der: Buffer; pem: string };

  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  try {
    csr = new x509.Pkcs10CertificateRequest(block.der);
  } catch {
    csrInvalid('the CERTIFICATE REQUEST block is not a valid PKCS#10 certification request');
  }

  let subject: NameFields;
  let spki: Buffer;
  try {
    // CertificationRequestInfo ::= SEQUENCE { version, subject Name, subjectPKInfo, [0] attributes }
    const info = expectTag(children(readTlv(block.der, 0))[0], TAG.SEQUENCE, 'certificationRequestInfo');
    const [, name, keyInfo] = children(info);
    subject = decodeName(expectTag(name, TAG.SEQUENCE, 'subject'), 'subject');
    const pkInfo = expectTag(keyInfo, TAG.SEQUENCE, 'subjectPublicKeyInfo');
    spki = info.value.subarray(pkInfo.start, pkInfo.end);
  } catch (e) {
    if (e instanceof DerError) csrInvalid(`the CSR is malformed: ${e.message}`);
    throw e;
  }

  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw invalidInput('key_type_not_allowed', 'the CSR public key is unreadable or of an unknown type; expected EC P-256, EC P-384 or RSA of at least 2048 bits');
  }
  let key: KeyDescription;
  try {
    key = describePublicKey(publicKey);
  } catch (e) {
    if (isTollgateError(e)) throw invalidInput(e.code, `CSR public key: ${e.message}`);
    throw e;
  }

  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch {
    // The library throws when the signature cannot even be decoded or the algorithm is unknown.
    valid = false;
  }
  if (!valid) {
    throw invalidInput(
      'csr_signature_invalid',
      'the CSR signature does not verify with the public key it contains; the CSR was altered or signed with another key',
    );
  }

  return { pem: block.pem, subject, publicKey, publicKeyFingerprint: publicKeyFingerprint(publicKey), key, ...requestedUsage(csr) };
}

function requestedUsage(csr: InstanceType<typeof x509.Pkcs10CertificateRequest>): Pick<CsrInfo, 'requestedKeyUsage' | 'requestedExtendedKeyUsage'> {
  const out: Pick<CsrInfo, 'requestedKeyUsage' | 'requestedExtendedKeyUsage'> = {};
  const seen = new Set<string>();
  try {
    if (csr.getAttributes(OID.extensionRequest).length > 1) csrInvalid('the CSR has more than one extensionRequest attribute');
    for (const ext of csr.extensions) {
      if (seen.has(ext.type)) csrInvalid(`the CSR requests extension ${ext.type} more than once`);
      seen.add(ext.type);
      const value = Buffer.from(ext.value);
      if (ext.type === OID.keyUsage) out.requestedKeyUsage = decodeKeyUsage(value);
      else if (ext.type === OID.extKeyUsage) out.requestedExtendedKeyUsage = decodeExtendedKeyUsage(value);
    }
  } catch (e) {
    if (isTollgateError(e)) throw e;
    if (e instanceof DerError) throw invalidInput('csr_key_usage_invalid', `the CSR's requested key usage cannot be read: ${e.message}`);
    // The library decodes attributes lazily, so a malformed extensionRequest surfaces only here.
    csrInvalid('the CSR attributes (extensionRequest) are malformed');
  }
  return out;
}
