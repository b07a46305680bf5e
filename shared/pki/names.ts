import { children, decodeOid, DerError, expectTag, TAG, type Tlv } from './der.js';
import { OID } from './oids.js';

/**
 * Decodes the X.501 Name attributes Tollgate reads (CN, OU, O) from DER.
 *
 * Read from DER rather than from node's one-line subject string, whose escaping rules vary between
 * OpenSSL versions. The device identity lives in these fields, so they must be unambiguous: a name
 * with two CNs (or OUs, or Os), or with control characters, is refused rather than guessed at.
 */

export interface NameFields {
  commonName?: string;
  organizationalUnit?: string;
  organization?: string;
}

const ATTRIBUTES: Record<string, keyof NameFields> = {
  [OID.commonName]: 'commonName',
  [OID.organizationalUnit]: 'organizationalUnit',
  [OID.organization]: 'organization',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf16be = new TextDecoder('utf-16be', { fatal: true });

function decodeString(tlv: Tlv, what: string): string {
  switch (tlv.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(tlv.value);
      } catch {
        throw new DerError(`${what} is not valid UTF-8`);
      }
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      if (tlv.value.some((b) => b > 0x7f)) throw new DerError(`${what} contains non-ASCII bytes in an ASCII string type`);
      return tlv.value.toString('latin1');
    case TAG.TELETEX_STRING:
      // T.61 in theory; in practice every producer writes Latin-1 here, which is how OpenSSL reads it too.
      return tlv.value.toString('latin1');
    case TAG.BMP_STRING:
      if (tlv.value.length % 2 !== 0) throw new DerError(`${what} is an invalid BMPString`);
      try {
        return utf16be.decode(tlv.value);
      } catch {
        throw new DerError(`${what} is an invalid BMPString`);
      }
    case TAG.UNIVERSAL_STRING: {
      if (tlv.value.length % 4 !== 0) throw new DerError(`${what} is an invalid UniversalString`);
      let out = '';
      for (let i = 0; i < tlv.value.length; i += 4) {
        const cp = tlv.value.readUInt32BE(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new DerError(`${what} is an invalid UniversalString`);
        out += String.fromCodePoint(cp);
      }
      return out;
    }
    default:
      throw new DerError(`${what} uses unsupported string type 0x${tlv.tag.toString(16)}`);
  }
}

const LABEL: Record<keyof NameFields, string> = {
  commonName: 'commonName (CN)',
  organizationalUnit: 'organizationalUnit (OU)',
  organization: 'organization (O)',
};

/** `name` is the DER Name (a SEQUENCE of RDN SETs); `where` is 'subject' or 'issuer', for messages. */
export function decodeName(name: Tlv, where: string): NameFields {
  expectTag(name, TAG.SEQUENCE, `${where} name`);
  const fields: NameFields = {};
  for (const rdn of children(name)) {
    expectTag(rdn, TAG.SET, `${where} relative distinguished name`);
    for (const atv of children(rdn)) {
      expectTag(atv, TAG.SEQUENCE, `${where} attribute`);
      const [type, value] = children(atv);
      const field = ATTRIBUTES[decodeOid(expectTag(type, TAG.OID, `${where} attribute type`).value)];
      if (!field) continue;
      if (!value) throw new DerError(`${where} ${LABEL[field]} has no value`);
      if (fields[field] !== undefined) throw new DerError(`${where} has more than one ${LABEL[field]}; at most one is accepted`);
      const text = decodeString(value, `${where} ${LABEL[field]}`);
      if (/[\u0000-\u001f\u007f]/.test(text)) throw new DerError(`${where} ${LABEL[field]} contains control characters`);
      fields[field] = text;
    }
  }
  return fields;
}

/**
 * The name as a string that two names share whenever OpenSSL would take them for the same issuer:
 * OpenSSL compares names in a canonical form (string values as UTF-8, outer spaces dropped, inner
 * runs of spaces made one, ASCII lower-cased; the attributes of one RDN as a set). This folds at
 * least as much (any Unicode white space and case), so names it keeps apart OpenSSL keeps apart too.
 */
export function canonicalName(name: Tlv): string {
  expectTag(name, TAG.SEQUENCE, 'name');
  return children(name)
    .map((rdn) =>
      children(expectTag(rdn, TAG.SET, 'relative distinguished name'))
        .map((atv) => {
          const [type, value] = children(expectTag(atv, TAG.SEQUENCE, 'attribute'));
          const oid = decodeOid(expectTag(type, TAG.OID, 'attribute type').value);
          return `${oid}=${value === undefined ? '' : canonicalValue(value)}`;
        })
        .sort()
        .join('+'),
    )
    .join(',');
}

function canonicalValue(value: Tlv): string {
  let text: string;
  try {
    text = decodeString(value, 'attribute value');
  } catch {
    // Not a string type: OpenSSL compares such values as they are encoded.
    return `#${value.tag.toString(16)}:${value.value.toString('hex')}`;
  }
  return JSON.stringify(text.trim().replace(/\s+/gu, ' ').toLowerCase());
}
