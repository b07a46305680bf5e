/** Tollgate's PKI: keys, PEM, certificate and CSR parsing, certificate issuance. */
export {
  describePublicKey,
  generateKeyPair,
  jwsAlgorithmFor,
  libtrustKeyId,
  publicKeyFingerprint,
  type KeyAlgorithm,
  type KeyDescription,
  type KeyPairPem,
} from './keys.js';
export { DEFAULT_KEY_ALGORITHM, isKeyAlgorithm, KEY_ALGORITHM_NAMES, KEY_ALGORITHMS } from './key-types.js';
export { OID } from './oids.js';
export { derToPem, MAX_PEM_BYTES, splitPemBundle } from './pem.js';
export { jwkThumbprint } from './thumbprint.js';
export { certificateInfoFromX509, isIssuedBy, parseCertificate, parseCsr, type CertificateInfo, type CsrInfo } from './x509.js';
export { createCsr, issueCertificate, type IssueRequest, type Profile, type SubjectFields } from './issue.js';
export { certificatesOfPkcs7, certsOnlyPkcs7 } from './pkcs7.js';
