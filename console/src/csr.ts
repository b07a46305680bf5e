/**
 * A device key and its PKCS#10 request, made in the browser with WebCrypto (EC P-256, ECDSA
 * SHA-256), so a test device's private key never leaves this machine except in its bundle.
 * The DER below covers exactly the structures a CSR needs (RFC 2986): too little to justify an
 * ASN.1 library in the console's bundle.
 */

function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

const tlv = (tag: number, body: Uint8Array | number[]): number[] => [tag, ...length(body.length), ...body];
const seq = (...parts: number[][]) => tlv(0x30, parts.flat());
const set = (...parts: number[][]) => tlv(0x31, parts.flat());
const utf8 = (s: string) => tlv(0x0c, [...new TextEncoder().encode(s)]);

function oid(dotted: string): number[] {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, out);
}

/** A DER INTEGER from big-endian unsigned bytes. */
function integer(bytes: Uint8Array): number[] {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = [...bytes.slice(i)];
  return tlv(0x02, v[0]! & 0x80 ? [0, ...v] : v);
}

function pem(label: string, der: Uint8Array): string {
  let b64 = '';
  const s = String.fromCharCode(...der);
  b64 = btoa(s);
  return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
}

export async function deviceKeyAndCsr(uuid: string, factory: string): Promise<{ csrPem: string; keyPem: string }> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  const subject = seq(set(seq(oid('2.5.4.3'), utf8(uuid))), set(seq(oid('2.5.4.11'), utf8(factory))));
  // Extension request: keyUsage digitalSignature (critical), extendedKeyUsage clientAuth.
  const keyUsage = seq(oid('2.5.29.15'), tlv(0x01, [0xff]), tlv(0x04, tlv(0x03, [0x07, 0x80])));
  const extKeyUsage = seq(oid('2.5.29.37'), tlv(0x04, seq(oid('1.3.6.1.5.5.7.3.2'))));
  const attributes = tlv(0xa0, seq(oid('1.2.840.113549.1.9.14'), set(seq(keyUsage, extKeyUsage))));
  const info = seq(tlv(0x02, [0]), subject, [...spki], attributes);
  const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, new Uint8Array(info)));
  // WebCrypto signs as r‖s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  const signature = seq(integer(raw.slice(0, 32)), integer(raw.slice(32)));
  const csr = seq(info, seq(oid('1.2.840.10045.4.3.2')), tlv(0x03, [0, ...signature]));
  return { csrPem: pem('CERTIFICATE REQUEST', new Uint8Array(csr)), keyPem: pem('PRIVATE KEY', pkcs8) };
}
