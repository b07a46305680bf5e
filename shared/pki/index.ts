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
export { certificateInfoFromX509, isIssuedBy, parseCertificate, type CertificateInfo } from './x509.js';
export type { CsrInfo } from './csr.js';
export type { IssueRequest, Profile, SubjectFields } from './issue.js';

// Building certificates and CSRs, parsing CSRs (@peculiar/x509, with tsyringe and reflect-metadata),
// CMS (pkijs) and JWK thumbprints (jose) are loaded on first use: a process answering devices and
// registries rarely needs them, and loaded they are tens of megabytes of every process's memory
// and a good part of its start-up (bench/, suite services).

export async function issueCertificate(...args: Parameters<typeof import('./issue.js').issueCertificate>): Promise<string> {
  return (await import('./issue.js')).issueCertificate(...args);
}

export async function createCsr(...args: Parameters<typeof import('./issue.js').createCsr>): Promise<string> {
  return (await import('./issue.js')).createCsr(...args);
}

export async function parseCsr(...args: Parameters<typeof import('./csr.js').parseCsr>): ReturnType<typeof import('./csr.js').parseCsr> {
  return (await import('./csr.js')).parseCsr(...args);
}

export async function jwkThumbprint(...args: Parameters<typeof import('./thumbprint.js').jwkThumbprint>): Promise<string> {
  return (await import('./thumbprint.js')).jwkThumbprint(...args);
}

/** A certs-only PKCS#7 (CMS SignedData without signers) holding the certificates, DER. */
export async function certsOnlyPkcs7(...args: Parameters<typeof import('./pkcs7.js').certsOnlyPkcs7>): Promise<Buffer> {
  return (await import('./pkcs7.js')).certsOnlyPkcs7(...args);
}

/** The certificates of a PKCS#7 (CMS SignedData), DER each. */
export async function certificatesOfPkcs7(...args: Parameters<typeof import('./pkcs7.js').certificatesOfPkcs7>): Promise<Buffer[]> {
  return (await import('./pkcs7.js')).certificatesOfPkcs7(...args);
}
