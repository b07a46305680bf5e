import { spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, issueCertificate } from '../../shared/pki/index.js';
import { certificatesOfPkcs7, certsOnlyPkcs7 } from '../../shared/pki/pkcs7.js';

/** The EST certs-only answer, read back by OpenSSL (what EST clients use) and by our own reader. */
describe('certs-only PKCS#7', () => {
  it('carries the certificates in order, as OpenSSL reads them', async () => {
    const pems: string[] = [];
    for (const name of ['first', 'second']) {
      const pair = generateKeyPair('ec-p256');
      pems.push(
        await issueCertificate({
          profile: 'root-ca',
          subject: { commonName: name },
          publicKey: createPublicKey(pair.publicKeyPem),
          notAfter: new Date(Date.now() + 86_400_000),
          selfSignPrivateKeyPem: pair.privateKeyPem,
        }),
      );
    }
    const der = certsOnlyPkcs7(pems);
    const openssl = spawnSync('openssl', ['pkcs7', '-inform', 'DER', '-print_certs'], { input: der, encoding: 'utf8' });
    expect(openssl.status, openssl.stderr).toBe(0);
    const printed = openssl.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    expect(printed.map((p) => new X509Certificate(p).fingerprint256)).toEqual(pems.map((p) => new X509Certificate(p).fingerprint256));
    expect(certificatesOfPkcs7(der).map((d) => new X509Certificate(d).fingerprint256)).toEqual(pems.map((p) => new X509Certificate(p).fingerprint256));
    expect(() => certificatesOfPkcs7(Buffer.from([0x30, 0x03, 0x06, 0x01, 0x00]))).toThrow();
  });
});
