import { children, decodeBitString, decodeOid, DerError, expectTag, readSingle, TAG, type Tlv } from './der.js';

/** Decoding of the X.509 extensions Tollgate reads: key usage, extended key usage, key identifiers. */

/** RFC 5280 section 4.2.1.3 names, indexed by bit number. */
export const KEY_USAGE_NAMES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGE_NAMES)[number];

export interface RawExtension {
  oid: string;
  critical: boolean;
  /** The content of extnValue: the DER of the extension's own structure. */
  value: Buffer;
}

/** `extensions` is the DER `Extensions` SEQUENCE. Duplicate extensions are invalid (RFC 5280 4.2). */
export function decodeExtensions(extensions: Tlv): RawExtension[] {
  expectTag(extensions, TAG.SEQUENCE, 'extensions');
  const out: RawExtension[] = [];
  for (const ext of children(extensions)) {
    expectTag(ext, TAG.SEQUENCE, 'extension');
    const parts = children(ext);
    const oid = decodeOid(expectTag(parts[0], TAG.OID, 'extension id').value);
    let critical = false;
    let valueTlv = parts[1];
    if (valueTlv?.tag === TAG.BOOLEAN) {
      critical = valueTlv.value.length === 1 && valueTlv.value[0] !== 0;
      valueTlv = parts[2];
    }
    const value = expectTag(valueTlv, TAG.OCTET_STRING, `extension ${oid} value`).value;
    if (out.some((e) => e.oid === oid)) throw new DerError(`extension ${oid} appears more than once`);
    out.push({ oid, critical, value });
  }
  return out;
}

export function decodeKeyUsage(value: Buffer): KeyUsageName[] {
  const bits = decodeBitString(readSingle(value, TAG.BIT_STRING, 'keyUsage').value);
  const unknown = bits.filter((b) => b >= KEY_USAGE_NAMES.length);
  if (unknown.length > 0) throw new DerError(`keyUsage sets undefined bit ${unknown[0]}`);
  return bits.map((b) => KEY_USAGE_NAMES[b] as KeyUsageName);
}

export function decodeExtendedKeyUsage(value: Buffer): string[] {
  const seq = readSingle(value, TAG.SEQUENCE, 'extendedKeyUsage');
  return children(seq).map((oid) => decodeOid(expectTag(oid, TAG.OID, 'extendedKeyUsage purpose').value));
}

/** The key identifier (hex) of a subjectKeyIdentifier extension. */
export function decodeSubjectKeyIdentifier(value: Buffer): string {
  return readSingle(value, TAG.OCTET_STRING, 'subjectKeyIdentifier').value.toString('hex');
}
