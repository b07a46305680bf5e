/**
 * Every object identifier Tollgate reads or writes, in one place: X.501 name attributes, X.509
 * extensions and key purposes, PKCS#9 attributes, CMS content types and the algorithms an AWS
 * instance identity signature may use.
 */
export const OID = {
  // X.501 name attributes (RFC 5280 appendix A).
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',

  // X.509 extensions (RFC 5280 section 4.2).
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  certificatePolicies: '2.5.29.32',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',

  // Extended key usage purposes (RFC 5280 section 4.2.1.12).
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',

  // PKCS#9 attributes (RFC 2985).
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  extensionRequest: '1.2.840.113549.1.9.14',

  // CMS content types (RFC 5652).
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',

  // Signature and digest algorithms.
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaPss: '1.2.840.113549.1.1.10',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  dsa: '1.2.840.10040.4.1',
  dsaWithSha1: '1.2.840.10040.4.3',
  dsaWithSha256: '2.16.840.1.101.3.4.3.2',
} as const;
