import { CertificateChoices, CertificateSet, ContentInfo, EncapsulatedContentInfo, id_data, id_signedData, SignedData } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { readPemBlocks } from './pem.js';

/**
 * A "certs-only" PKCS#7 / CMS message: a SignedData with certificates and no content or signers,
 * the degenerate form RFC 5652 (SignedData) allows and RFC 7030 (EST) answers /cacerts and
 * /simplereenroll with. DER out; callers base64-encode it for the wire.
 */
export function certsOnlyPkcs7(certificatePems: readonly string[]): Buffer {
  const certificates = certificatePems.flatMap((pem) => readPemBlocks(pem, ['CERTIFICATE'])).map(
    (block) => new CertificateChoices({ certificate: AsnConvert.parse(block.der, Certificate) }),
  );
  const signedData = new SignedData({
    version: 1,
    // eContent absent: there is nothing signed, only certificates carried.
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(certificates),
  });
  const contentInfo = new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signedData) });
  return Buffer.from(AsnConvert.serialize(contentInfo));
}

/** The certificates of a certs-only PKCS#7 (DER), as DER buffers in the order carried. */
export function certificatesOfPkcs7(der: Uint8Array): Buffer[] {
  const contentInfo = AsnConvert.parse(der, ContentInfo);
  if (contentInfo.contentType !== id_signedData) throw new TypeError('not a SignedData message');
  const signedData = AsnConvert.parse(contentInfo.content, SignedData);
  return (signedData.certificates ?? []).flatMap((c) => (c.certificate ? [Buffer.from(AsnConvert.serialize(c.certificate))] : []));
}
