import * as pkijs from 'pkijs';
import { readPemBlocks } from './pem.js';

/**
 * A "certs-only" PKCS#7 / CMS message: a SignedData with certificates and no content or signers,
 * the degenerate form RFC 5652 (SignedData) allows and RFC 7030 (EST) answers /cacerts and
 * /simplereenroll with. DER out; callers base64-encode it for the wire. Built and read with pkijs,
 * the CMS implementation that also verifies AWS's signed identity documents.
 */

const ID_DATA = '1.2.840.113549.1.7.1';
const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';

export function certsOnlyPkcs7(certificatePems: readonly string[]): Buffer {
  const certificates = certificatePems.flatMap((pem) => readPemBlocks(pem, ['CERTIFICATE'])).map((block) => pkijs.Certificate.fromBER(block.der));
  const signedData = new pkijs.SignedData({
    version: 1,
    // eContent absent: there is nothing signed, only certificates carried.
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: ID_DATA }),
    certificates,
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: ID_SIGNED_DATA, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}

/** The certificates of a certs-only PKCS#7 (DER), as DER buffers in the order carried. */
export function certificatesOfPkcs7(der: Uint8Array): Buffer[] {
  const contentInfo = pkijs.ContentInfo.fromBER(der);
  if (contentInfo.contentType !== ID_SIGNED_DATA) throw new TypeError('not a SignedData message');
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  return (signedData.certificates ?? []).flatMap((c) => (c instanceof pkijs.Certificate ? [Buffer.from(c.toSchema().toBER(false))] : []));
}
