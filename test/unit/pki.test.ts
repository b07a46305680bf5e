import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTollgateError, type TollgateError } from '../../shared/errors.js';
import {
  certificateInfoFromX509,
  createCsr,
  derToPem,
  describePublicKey,
  generateKeyPair,
  isIssuedBy,
  issueCertificate,
  jwkThumbprint,
  jwsAlgorithmFor,
  libtrustKeyId,
  parseCertificate,
  parseCsr,
  publicKeyFingerprint,
  splitPemBundle,
  type KeyAlgorithm,
  type KeyPairPem,
} from '../../shared/pki/index.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY = 86_400_000;
const DEVICE_UUID = '3f2c8a52-6b1e-4c59-9a54-0e0f7d1c2b3a';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-pki-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function write(name: string, content: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, content);
  return file;
}

/** The TollgateError `fn` throws (sync or async); fails the test if it throws something else or nothing. */
async function errorOf(fn: () => unknown): Promise<TollgateError> {
  try {
    await fn();
  } catch (e) {
    if (isTollgateError(e)) return e;
    throw new Error(`expected a TollgateError, got ${String(e)}`);
  }
  throw new Error('expected a TollgateError, nothing was thrown');
}

const pub = (pair: KeyPairPem) => crypto.createPublicKey(pair.publicKeyPem);

/** RFC 4648 base32, written independently of the module under test. */
function base32(data: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...data].map((b) => b.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

function libtrustByDefinition(key: crypto.KeyObject): string {
  const digest = crypto.createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest();
  return base32(digest.subarray(0, 30)).replace(/(.{4})(?!$)/g, '$1:');
}

// Published key-id vectors from libtrust-py's test fixtures (a Python port of docker/libtrust).
const LIBTRUST_EC_PUBLIC = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4pBqYlc5IU5pJh5AOvijtEccStyJ
u0dSAiz4OlDGGFk5PvSlSh+wqUcSyp1ZRSP5kX7Pluof72g5MniaoFrLKg==
-----END PUBLIC KEY-----
`;
const LIBTRUST_EC_KID = 'UEV2:PPF2:4DMU:WZYF:WOWU:677P:B7XU:SGFA:BMUG:NCTC:R7CL:XFKZ';
const LIBTRUST_RSA_PUBLIC = `-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAwq1mCmgn460MC6MnCqra
nQNTgmKuKPl7bNH7Qc6hBDGHlnIjU6q/h2KXF37TC5Y9tsKvQ4b8jd0Sf0dXFHml
8qunSvNnqsSvoD8tSPUKqXS6jrlbGSQXhya7BL1RPGccD5K1xrV73QlI6uFPd3AP
RQYij5EOB8IOWEQujJk/8Mjc0EC9zvk5TUJb59hkOUPZ3CkvSBNLNS8wpQI98FRn
IzHjuaNicqve8054oxmDKifHWy0nnF135cXW8zkH3Zto1q89zD2g+zcVxLcRP84U
he0nSQyg7vEYl4Wl74Eo6/89qL2yE0mEiQN245ACA5B8WFV/t3j/OD3ydOCaAOg2
8vQtzcZ1gh2Ev4RxeR7bKq58g+R0+MMwl7nnW29mbCkcgdVVR4YPmglP7Vb6w7/N
bqFhnxx4E3A05AeevHdMdYCrtgQwogvIhdOHLcVQxJgwy1d2Lg/mv9rovhCJ7d3X
aNEYym6CplCHPMtfnU1LCVkA6b44pFaOVjsAQ8FviFtGXQAToRtwoszSarzslHKY
dPoSGFOsgNJgW67iViOYqGPD97rgJA0VPm0POMNHGw/R6o+08KhDF/OI1EDckmjX
hUggY/WCqWDxD77Ezd/wr9Zlbv/uSIEL9ifvBLq06lLcXMLrQbJrwMbDrngMZMAc
UkTzThmtxNs4uwu45R+zfKcCAwEAAQ==
-----END PUBLIC KEY-----
`;
const LIBTRUST_RSA_KID = 'IIYO:OWAZ:MBMG:2SIK:IK2I:OP5Z:H6QR:KN6Y:QUGO:BUWN:TYW3:JXVW';

describe('keys', () => {
  it('generates EC keys (P-256 by default) and describes them', () => {
    const p256 = generateKeyPair();
    expect(p256.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(p256.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(describePublicKey(pub(p256))).toEqual({ type: 'ec', curve: 'P-256', algorithm: 'ec-p256' });
    expect(jwsAlgorithmFor(pub(p256))).toBe('ES256');

    const p384 = generateKeyPair('ec-p384');
    expect(describePublicKey(pub(p384))).toEqual({ type: 'ec', curve: 'P-384', algorithm: 'ec-p384' });
    expect(jwsAlgorithmFor(pub(p384))).toBe('ES384');
    // A private key object describes its public half.
    expect(describePublicKey(crypto.createPrivateKey(p384.privateKeyPem)).algorithm).toBe('ec-p384');
  });

  it('generates RSA keys and buckets their sizes', () => {
    const rsa2048 = generateKeyPair('rsa-2048');
    expect(describePublicKey(pub(rsa2048))).toEqual({ type: 'rsa', bits: 2048, algorithm: 'rsa-2048' });
    expect(jwsAlgorithmFor(pub(rsa2048))).toBe('RS256');
    const rsa3072 = generateKeyPair('rsa-3072');
    expect(describePublicKey(pub(rsa3072))).toEqual({ type: 'rsa', bits: 3072, algorithm: 'rsa-3072' });

    const odd = crypto.generateKeyPairSync('rsa', { modulusLength: 2560 }).publicKey;
    expect(describePublicKey(odd)).toEqual({ type: 'rsa', bits: 2560, algorithm: 'rsa-2048' });
    expect(describePublicKey(crypto.createPublicKey(LIBTRUST_RSA_PUBLIC))).toEqual({ type: 'rsa', bits: 4096, algorithm: 'rsa-4096' });
  });

  it('refuses small RSA keys and other key types with precise errors', async () => {
    const rsa1024 = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const small = await errorOf(() => describePublicKey(rsa1024));
    expect(small.code).toBe('key_too_small');
    expect(small.kind).toBe('invalid_input');
    expect(small.message).toMatch(/1024 bits; at least 2048/);

    const ed = await errorOf(() => describePublicKey(crypto.generateKeyPairSync('ed25519').publicKey));
    expect(ed.code).toBe('key_type_not_allowed');
    expect(ed.message).toMatch(/ed25519/);

    const p521 = await errorOf(() => describePublicKey(crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey));
    expect(p521.code).toBe('key_type_not_allowed');
    expect(p521.message).toMatch(/secp521r1.*expected P-256 or P-384/);

    const k1 = await errorOf(() => describePublicKey(crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey));
    expect(k1.code).toBe('key_type_not_allowed');

    const secret = await errorOf(() => describePublicKey(crypto.createSecretKey(crypto.randomBytes(32))));
    expect(secret.code).toBe('key_type_not_allowed');
  });

  it('computes libtrust key ids by the definition and matches published vectors', () => {
    for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyAlgorithm[]) {
      const key = pub(generateKeyPair(alg));
      const kid = libtrustKeyId(key);
      expect(kid).toMatch(/^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$/);
      expect(kid.replaceAll(':', '')).toHaveLength(48);
      expect(kid.split(':')).toHaveLength(12);
      expect(kid).toBe(libtrustByDefinition(key));
    }
    const ec = crypto.createPublicKey(LIBTRUST_EC_PUBLIC);
    expect(libtrustByDefinition(ec)).toBe(LIBTRUST_EC_KID);
    expect(libtrustKeyId(ec)).toBe(LIBTRUST_EC_KID);
    expect(libtrustKeyId(crypto.createPublicKey(LIBTRUST_RSA_PUBLIC))).toBe(LIBTRUST_RSA_KID);
  });

  it('computes RFC 7638 thumbprints: the example of RFC 7638 section 3.1, and the same for a private key as its public half', async () => {
    const rfcExample = crypto.createPublicKey({
      format: 'jwk',
      key: {
        kty: 'RSA',
        n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
        e: 'AQAB',
      },
    });
    expect(await jwkThumbprint(rfcExample)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyAlgorithm[]) {
      const pair = generateKeyPair(alg);
      expect(await jwkThumbprint(crypto.createPrivateKey(pair.privateKeyPem))).toBe(await jwkThumbprint(pub(pair)));
    }
  });

  it('fingerprints the SPKI DER', () => {
    const key = pub(generateKeyPair());
    const expected = crypto.createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
    expect(publicKeyFingerprint(key)).toBe(expected);
    expect(publicKeyFingerprint(key)).toMatch(/^[0-9a-f]{64}$/);
  });
});

interface Chain {
  root: { pair: KeyPairPem; pem: string };
  deviceCa: { pair: KeyPairPem; pem: string };
  device: { pair: KeyPairPem; pem: string };
}

async function buildChain(alg: KeyAlgorithm, rootAlg: KeyAlgorithm = alg): Promise<Chain> {
  const now = Date.now();
  const rootPair = generateKeyPair(rootAlg);
  const rootPem = await issueCertificate({
    profile: 'root-ca',
    subject: { commonName: 'Tollgate Test Root', organization: 'Tollgate' },
    publicKey: pub(rootPair),
    notAfter: new Date(now + 3650 * DAY),
    selfSignPrivateKeyPem: rootPair.privateKeyPem,
  });
  const caPair = generateKeyPair(alg);
  const caPem = await issueCertificate({
    profile: 'device-ca',
    subject: { commonName: 'acme device CA', organizationalUnit: 'acme', organization: 'Tollgate' },
    publicKey: pub(caPair),
    notAfter: new Date(now + 1825 * DAY),
    issuer: { certificatePem: rootPem, privateKeyPem: rootPair.privateKeyPem },
  });
  const devicePair = generateKeyPair(alg);
  const devicePem = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: DEVICE_UUID, organizationalUnit: 'acme' },
    publicKey: pub(devicePair),
    notAfter: new Date(now + 365 * DAY),
    issuer: { certificatePem: caPem, privateKeyPem: caPair.privateKeyPem },
  });
  return { root: { pair: rootPair, pem: rootPem }, deviceCa: { pair: caPair, pem: caPem }, device: { pair: devicePair, pem: devicePem } };
}

describe('certificate chains', () => {
  const chains: Record<string, Chain> = {};
  beforeAll(async () => {
    chains.ec = await buildChain('ec-p256');
    chains.rsa = await buildChain('rsa-2048');
    chains.mixed = await buildChain('ec-p256', 'ec-p384');
  });

  for (const name of ['ec', 'rsa', 'mixed']) {
    it(`issues and parses a root -> device CA -> device chain (${name})`, () => {
      const chain = chains[name] as Chain;
      const root = parseCertificate(chain.root.pem);
      const ca = parseCertificate(chain.deviceCa.pem);
      const device = parseCertificate(chain.device.pem);

      expect(device.subject).toEqual({ commonName: DEVICE_UUID, organizationalUnit: 'acme' });
      expect(device.issuer).toEqual({ commonName: 'acme device CA', organizationalUnit: 'acme', organization: 'Tollgate' });
      expect(device.extendedKeyUsage).toContain(CLIENT_AUTH);
      expect(device.keyUsage).toEqual(['digitalSignature']);
      expect(device.isCa).toBe(false);
      expect(device.publicKeyFingerprint).toBe(publicKeyFingerprint(pub(chain.device.pair)));
      expect(device.key.algorithm).toBe(describePublicKey(pub(chain.device.pair)).algorithm);
      expect(device.fingerprint256).toBe(crypto.createHash('sha256').update(device.der).digest('hex'));
      expect(device.serialNumber).toMatch(/^[0-9a-f]{32}$/);
      expect(device.pem).toBe(chain.device.pem);
      // Default notBefore allows for device clock skew.
      expect(device.notBefore.getTime()).toBeLessThanOrEqual(Date.now() - 4 * 60_000);
      expect(device.notAfter.getTime()).toBeGreaterThan(Date.now() + 364 * DAY);

      expect(ca.isCa).toBe(true);
      expect(ca.keyUsage).toEqual(['digitalSignature', 'keyCertSign', 'cRLSign']);
      expect(ca.extendedKeyUsage).toEqual([]);
      expect(root.isCa).toBe(true);
      expect(root.subject).toEqual({ commonName: 'Tollgate Test Root', organization: 'Tollgate' });

      expect(isIssuedBy(device, ca)).toBe(true);
      expect(isIssuedBy(ca, root)).toBe(true);
      expect(isIssuedBy(root, root)).toBe(true);
      expect(isIssuedBy(device, root)).toBe(false);
      expect(isIssuedBy(ca, device)).toBe(false);
    });
  }

  it('is not fooled by a CA with the same name but another key', async () => {
    const chain = chains.ec as Chain;
    const impostorPair = generateKeyPair();
    const impostor = await issueCertificate({
      profile: 'device-ca',
      subject: { commonName: 'acme device CA', organizationalUnit: 'acme', organization: 'Tollgate' },
      publicKey: pub(impostorPair),
      notAfter: new Date(Date.now() + 30 * DAY),
      selfSignPrivateKeyPem: impostorPair.privateKeyPem,
    });
    expect(isIssuedBy(parseCertificate(chain.device.pem), parseCertificate(impostor))).toBe(false);
  });

  it('is accepted by openssl verify and shows the client-auth EKU in openssl x509 -text', () => {
    for (const name of ['ec', 'rsa', 'mixed']) {
      const chain = chains[name] as Chain;
      const rootFile = write(`${name}-root.pem`, chain.root.pem);
      const caFile = write(`${name}-ca.pem`, chain.deviceCa.pem);
      const deviceFile = write(`${name}-device.pem`, chain.device.pem);
      expect(openssl(['verify', '-CAfile', rootFile, '-untrusted', caFile, '-purpose', 'sslclient', deviceFile]).trim()).toBe(`${deviceFile}: OK`);
      // The device CA is limited to path length 0: it cannot sign a further CA.
      expect(openssl(['x509', '-in', caFile, '-noout', '-text'])).toMatch(/CA:TRUE, pathlen:0/);
    }
    const text = openssl(['x509', '-in', path.join(tmp, 'ec-device.pem'), '-noout', '-text']);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s*\n\s*Digital Signature\s*\n/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(openssl(['x509', '-in', path.join(tmp, 'rsa-device.pem'), '-noout', '-text'])).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    // The signature algorithm follows the issuer's key: a P-384 root signs with SHA-384.
    expect(openssl(['x509', '-in', path.join(tmp, 'mixed-ca.pem'), '-noout', '-text'])).toMatch(/Signature Algorithm: ecdsa-with-SHA384/);
  });

  it('parses certificates openssl made, with the same fields', () => {
    const key = write('ossl-key.pem', generateKeyPair().privateKeyPem);
    const pem = openssl([
      'req', '-x509', '-new', '-key', key, '-subj', '/O=Acme, Inc./OU=line 4/CN=ossl-ca', '-days', '2', '-set_serial', '0x0abc',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const info = parseCertificate(pem);
    expect(info.subject).toEqual({ commonName: 'ossl-ca', organizationalUnit: 'line 4', organization: 'Acme, Inc.' });
    expect(info.serialNumber).toBe(new crypto.X509Certificate(pem).serialNumber.toLowerCase());
    expect(BigInt(`0x${info.serialNumber}`)).toBe(0xabcn);
    expect(info.isCa).toBe(true);
    expect(info.keyUsage).toEqual(['keyCertSign', 'cRLSign']);
    expect(Math.abs(info.notAfter.getTime() - info.notBefore.getTime() - 2 * DAY)).toBeLessThan(2000);
  });

  it('works out the PEM and the key fingerprint when first read, and a spread copy carries them', () => {
    const chain = chains.rsa as Chain;
    const device = parseCertificate(chain.device.pem);
    for (const field of ['pem', 'publicKeyFingerprint'] as const) {
      expect(Object.getOwnPropertyDescriptor(device, field)?.get, field).toBeTypeOf('function');
    }
    const copy = { ...device };
    expect(Object.getOwnPropertyDescriptor(copy, 'pem')?.value).toBe(chain.device.pem);
    expect(copy.publicKeyFingerprint).toBe(publicKeyFingerprint(pub(chain.device.pair)));
    // Memoised: the same string each time.
    expect(device.publicKeyFingerprint).toBe(device.publicKeyFingerprint);
    expect(device.pem).toBe(chain.device.pem);
  });

  it('refuses two certificates where one is expected, and non-certificates', async () => {
    const chain = chains.ec as Chain;
    const two = await errorOf(() => parseCertificate(chain.device.pem + chain.deviceCa.pem));
    expect(two.code).toBe('certificate_invalid');
    expect(two.message).toMatch(/exactly one certificate, found 2/);

    const notCert = await errorOf(() => parseCertificate(derToPem(Buffer.from('3003020101', 'hex'), 'CERTIFICATE')));
    expect(notCert.code).toBe('certificate_invalid');

    const key = await errorOf(() => parseCertificate(chain.device.pair.privateKeyPem));
    expect(key.code).toBe('pem_invalid');
    expect(key.message).toMatch(/"PRIVATE KEY"; expected "CERTIFICATE"/);
    expect(key.message).not.toMatch(/MII/);
  });

  it('refuses ed25519 certificates (key policy) when parsing', async () => {
    const key = write('ed-key.pem', crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const pem = openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${DEVICE_UUID}`, '-days', '1']);
    const err = await errorOf(() => parseCertificate(pem));
    expect(err.code).toBe('key_type_not_allowed');
  });

  it('sets a requested serial number and honours explicit validity', async () => {
    const pair = generateKeyPair();
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const notAfter = new Date('2060-06-01T12:00:00Z');
    const pem = await issueCertificate({
      profile: 'token-signing',
      subject: { commonName: 'Tollgate token signing', organization: 'Tollgate' },
      publicKey: pub(pair),
      notBefore,
      notAfter,
      serialNumber: 'FF01',
      selfSignPrivateKeyPem: pair.privateKeyPem,
    });
    const info = parseCertificate(pem);
    expect(info.serialNumber).toBe('ff01');
    expect(info.notBefore.toISOString()).toBe(notBefore.toISOString());
    // After 2049 the date is a GeneralizedTime.
    expect(info.notAfter.toISOString()).toBe(notAfter.toISOString());
    expect(info.keyUsage).toEqual(['digitalSignature']);
    expect(info.extendedKeyUsage).toEqual([]);
    expect(info.isCa).toBe(false);
  });

  it('keeps special characters in names exactly', async () => {
    const pair = generateKeyPair();
    const subject = { commonName: 'CN with, comma + plus "quotes" \\ back=slash', organizationalUnit: 'Usine Çà-été ✓', organization: '#hash;semi' };
    const pem = await issueCertificate({
      profile: 'ca-verification',
      subject,
      publicKey: pub(pair),
      notAfter: new Date(Date.now() + DAY),
      selfSignPrivateKeyPem: pair.privateKeyPem,
    });
    expect(parseCertificate(pem).subject).toEqual(subject);
  });

  it('refuses unsound issuance requests with precise errors', async () => {
    const chain = chains.ec as Chain;
    const pair = generateKeyPair();
    const base = {
      profile: 'device-client' as const,
      subject: { commonName: DEVICE_UUID, organizationalUnit: 'acme' },
      publicKey: pub(pair),
      notAfter: new Date(Date.now() + DAY),
    };
    const mismatch = await errorOf(() => issueCertificate({ ...base, issuer: { certificatePem: chain.deviceCa.pem, privateKeyPem: chain.root.pair.privateKeyPem } }));
    expect(mismatch.code).toBe('issuer_key_mismatch');

    const notCa = await errorOf(() => issueCertificate({ ...base, issuer: { certificatePem: chain.device.pem, privateKeyPem: chain.device.pair.privateKeyPem } }));
    expect(notCa.code).toBe('issuer_not_ca');

    const tooLong = await errorOf(() =>
      issueCertificate({ ...base, notAfter: new Date(Date.now() + 4000 * DAY), issuer: { certificatePem: chain.deviceCa.pem, privateKeyPem: chain.deviceCa.pair.privateKeyPem } }),
    );
    expect(tooLong.code).toBe('validity_exceeds_issuer');

    const selfMismatch = await errorOf(() => issueCertificate({ ...base, selfSignPrivateKeyPem: chain.device.pair.privateKeyPem }));
    expect(selfMismatch.code).toBe('signing_key_mismatch');

    const noSigner = await errorOf(() => issueCertificate(base));
    expect(noSigner.code).toBe('issuer_missing');

    const badKey = await errorOf(() => issueCertificate({ ...base, issuer: { certificatePem: chain.deviceCa.pem, privateKeyPem: 'not a key' } }));
    expect(badKey.code).toBe('private_key_invalid');
    expect(badKey.message).not.toMatch(/not a key/);

    const longCn = await errorOf(() => issueCertificate({ ...base, subject: { commonName: 'x'.repeat(65) }, selfSignPrivateKeyPem: pair.privateKeyPem }));
    expect(longCn.code).toBe('subject_invalid');
    expect(longCn.message).toMatch(/65 characters; X\.509 allows at most 64/);

    const backwards = await errorOf(() => issueCertificate({ ...base, notAfter: new Date(Date.now() - DAY), selfSignPrivateKeyPem: pair.privateKeyPem }));
    expect(backwards.code).toBe('validity_invalid');

    const weak = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const weakSubject = await errorOf(() => issueCertificate({ ...base, publicKey: weak, issuer: { certificatePem: chain.deviceCa.pem, privateKeyPem: chain.deviceCa.pair.privateKeyPem } }));
    expect(weakSubject.code).toBe('key_too_small');

    const sanOnClient = await errorOf(() => issueCertificate({ ...base, dnsNames: ['a.example'], selfSignPrivateKeyPem: pair.privateKeyPem }));
    expect(sanOnClient.code).toBe('san_not_allowed');

    const noSan = await errorOf(() => issueCertificate({ ...base, profile: 'tls-server', selfSignPrivateKeyPem: pair.privateKeyPem }));
    expect(noSan.code).toBe('san_required');

    const badSerial = await errorOf(() => issueCertificate({ ...base, serialNumber: '00', selfSignPrivateKeyPem: pair.privateKeyPem }));
    expect(badSerial.code).toBe('serial_number_invalid');

    const rootWithIssuer = await errorOf(() =>
      issueCertificate({ ...base, profile: 'root-ca', issuer: { certificatePem: chain.root.pem, privateKeyPem: chain.root.pair.privateKeyPem } }),
    );
    expect(rootWithIssuer.code).toBe('profile_invalid');
  });
});

describe('CSRs', () => {
  it('round-trips createCsr -> parseCsr (EC and RSA), and openssl agrees the signature is valid', async () => {
    for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048'] as KeyAlgorithm[]) {
      const pair = generateKeyPair(alg);
      const pem = await createCsr({
        subject: { commonName: DEVICE_UUID, organizationalUnit: 'acme' },
        privateKeyPem: pair.privateKeyPem,
        publicKeyPem: pair.publicKeyPem,
        keyUsage: ['digitalSignature'],
        extendedKeyUsage: [CLIENT_AUTH],
      });
      expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
      const csr = await parseCsr(pem);
      expect(csr.subject).toEqual({ commonName: DEVICE_UUID, organizationalUnit: 'acme' });
      expect(csr.key.algorithm).toBe(alg);
      expect(csr.publicKeyFingerprint).toBe(publicKeyFingerprint(pub(pair)));
      expect(csr.publicKey.export({ type: 'spki', format: 'pem' })).toBe(pair.publicKeyPem);
      expect(csr.requestedKeyUsage).toEqual(['digitalSignature']);
      expect(csr.requestedExtendedKeyUsage).toEqual([CLIENT_AUTH]);
      expect(csr.pem).toBe(pem);

      const file = write(`csr-${alg}.pem`, pem);
      expect(openssl(['req', '-in', file, '-noout', '-verify'], undefined)).toBe('');
    }
  });

  it('reads CSRs made by openssl, without an extension request', async () => {
    const key = write('ossl-csr-key.pem', generateKeyPair().privateKeyPem);
    const pem = openssl(['req', '-new', '-key', key, '-subj', `/OU=acme/CN=${DEVICE_UUID}`]);
    const csr = await parseCsr(pem);
    expect(csr.subject).toEqual({ commonName: DEVICE_UUID, organizationalUnit: 'acme' });
    expect(csr.requestedKeyUsage).toBeUndefined();
    expect(csr.requestedExtendedKeyUsage).toBeUndefined();
  });

  it('issues a device certificate for a parsed CSR', async () => {
    const chain = await buildChain('ec-p256');
    const pair = generateKeyPair();
    const csr = await parseCsr(await createCsr({ subject: { commonName: DEVICE_UUID, organizationalUnit: 'acme' }, privateKeyPem: pair.privateKeyPem, publicKeyPem: pair.publicKeyPem }));
    const pem = await issueCertificate({
      profile: 'device-client',
      subject: { commonName: csr.subject.commonName as string, organizationalUnit: csr.subject.organizationalUnit as string },
      publicKey: csr.publicKey,
      notAfter: new Date(Date.now() + DAY),
      issuer: { certificatePem: chain.deviceCa.pem, privateKeyPem: chain.deviceCa.pair.privateKeyPem },
    });
    const cert = parseCertificate(pem);
    expect(cert.publicKeyFingerprint).toBe(csr.publicKeyFingerprint);
    expect(isIssuedBy(cert, parseCertificate(chain.deviceCa.pem))).toBe(true);
  });

  it('refuses a CSR whose signature was altered', async () => {
    for (const alg of ['ec-p256', 'rsa-2048'] as KeyAlgorithm[]) {
      const pair = generateKeyPair(alg);
      const pem = await createCsr({ subject: { commonName: DEVICE_UUID }, privateKeyPem: pair.privateKeyPem, publicKeyPem: pair.publicKeyPem });
      const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
      // The signature BIT STRING ends the CSR: its last byte is signature material.
      der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
      const err = await errorOf(() => parseCsr(derToPem(der, 'CERTIFICATE REQUEST')));
      expect(err.code).toBe('csr_signature_invalid');
      expect(err.message).toMatch(/does not verify/);
    }
  });

  it('refuses a CSR whose subject was altered after signing', async () => {
    const pair = generateKeyPair();
    const pem = await createCsr({ subject: { commonName: 'aaaaaaaa' }, privateKeyPem: pair.privateKeyPem, publicKeyPem: pair.publicKeyPem });
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('aaaaaaaa'));
    der.write('bbbbbbbb', at, 'latin1');
    const err = await errorOf(() => parseCsr(derToPem(der, 'CERTIFICATE REQUEST')));
    expect(err.code).toBe('csr_signature_invalid');
  });

  it('refuses garbage with a precise error', async () => {
    const garbage = await errorOf(() => parseCsr('hello, this is not a CSR'));
    expect(garbage.code).toBe('pem_invalid');
    expect(garbage.message).toMatch(/no PEM block found; expected -----BEGIN CERTIFICATE REQUEST-----/);

    const truncated = await errorOf(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nMIIBFjCBvQIBADA=\n'));
    expect(truncated.code).toBe('pem_invalid');
    expect(truncated.message).toMatch(/has no -----END CERTIFICATE REQUEST----- line/);

    const notCsr = await errorOf(() => parseCsr(derToPem(Buffer.from('3003020101', 'hex'), 'CERTIFICATE REQUEST')));
    expect(notCsr.code).toBe('csr_invalid');

    const cert = (await buildChain('ec-p256')).device.pem;
    const wrongLabel = await errorOf(() => parseCsr(cert));
    expect(wrongLabel.code).toBe('pem_invalid');
    expect(wrongLabel.message).toMatch(/is "CERTIFICATE"; expected "CERTIFICATE REQUEST"/);

    const huge = await errorOf(() => parseCsr(`${'#'.repeat(70_000)}\n`));
    expect(huge.code).toBe('pem_too_large');
  });

  it('refuses an RSA-1024 CSR as key_too_small', async () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
      modulusLength: 1024,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const pem = await createCsr({ subject: { commonName: DEVICE_UUID, organizationalUnit: 'acme' }, privateKeyPem: privateKey, publicKeyPem: publicKey });
    const err = await errorOf(() => parseCsr(pem));
    expect(err.code).toBe('key_too_small');
    expect(err.message).toMatch(/CSR public key: RSA key has 1024 bits; at least 2048 bits are required/);
  });

  it('refuses ed25519 and P-521 CSRs (made with openssl) as key_type_not_allowed', async () => {
    const edKey = write('ed25519.pem', openssl(['genpkey', '-algorithm', 'ed25519']));
    const edCsr = openssl(['req', '-new', '-key', edKey, '-subj', `/OU=acme/CN=${DEVICE_UUID}`]);
    expect(edCsr).toMatch(/-----BEGIN CERTIFICATE REQUEST-----/);
    const ed = await errorOf(() => parseCsr(edCsr));
    expect(ed.code).toBe('key_type_not_allowed');
    expect(ed.message).toMatch(/ed25519 keys are not accepted; expected EC P-256, EC P-384 or RSA/);

    const p521Key = write('p521.pem', openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']));
    const p521 = await errorOf(async () => parseCsr(openssl(['req', '-new', '-key', p521Key, '-subj', `/CN=${DEVICE_UUID}`])));
    expect(p521.code).toBe('key_type_not_allowed');
    expect(p521.message).toMatch(/secp521r1/);
  });

  it('refuses a CSR with two CNs rather than picking one', async () => {
    const key = write('two-cn-key.pem', generateKeyPair().privateKeyPem);
    const pem = openssl(['req', '-new', '-key', key, '-subj', `/CN=${DEVICE_UUID}/CN=11111111-1111-1111-1111-111111111111`]);
    const err = await errorOf(() => parseCsr(pem));
    expect(err.code).toBe('csr_invalid');
    expect(err.message).toMatch(/more than one commonName/);
  });
});

describe('PEM bundles', () => {
  const certs: string[] = [];
  beforeAll(async () => {
    const chain = await buildChain('ec-p256');
    certs.push(chain.device.pem, chain.deviceCa.pem, chain.root.pem);
  });

  it('splits bundles of one and three certificates', () => {
    expect(splitPemBundle(certs[0] as string, 'CERTIFICATE')).toEqual([certs[0]]);
    expect(splitPemBundle(certs.join(''), 'CERTIFICATE')).toEqual(certs);
  });

  it('normalises CRLF, indentation, long lines and explanatory text', () => {
    const crlf = certs.join('\r\n').replace(/\n/g, '\r\n');
    expect(splitPemBundle(crlf, 'CERTIFICATE')).toEqual(certs);

    const decorated = certs.map((c, i) => `subject=CN = cert ${i}\nissuer=whatever\n  ${c.trim().split('\n').join('\n  ')}  \n\n`).join('');
    expect(splitPemBundle(decorated)).toEqual(certs);

    // One body line of any length is still the same certificate.
    const oneLine = certs[0]!.replace(/\n(?!-----)/g, '').replace('-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\n');
    expect(splitPemBundle(oneLine)).toEqual([certs[0]]);
  });

  it('refuses garbage and damaged blocks with pem_invalid', async () => {
    const cases: Array<[string, RegExp]> = [
      ['', /no PEM block found/],
      ['just some text\nand more', /no PEM block found; expected -----BEGIN CERTIFICATE-----/],
      [certs[0]!.replace('-----END CERTIFICATE-----', ''), /has no -----END CERTIFICATE----- line/],
      [certs[0]!.replace('-----BEGIN CERTIFICATE-----', ''), /base64 data outside a PEM block|unmatched PEM boundary/],
      [certs[0]!.replace('-----END CERTIFICATE-----', '-----END PRIVATE KEY-----'), /closes a block opened as "CERTIFICATE"/],
      [certs[0]!.replace('-----BEGIN CERTIFICATE-----', '----BEGIN CERTIFICATE-----'), /line 1: malformed or unmatched PEM boundary/],
      [certs[0]!.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1!'), /line 2: invalid base64/],
      [certs[0]!.split('\n').filter((_, i) => i !== 3).join('\n'), /not valid base64|single well-formed DER/],
      [`${certs[0]}${certs[1]!.slice(0, 200)}`, /has no -----END CERTIFICATE----- line/],
      ['-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END CERTIFICATE-----\n', /PEM headers/],
      ['-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', /not valid base64/],
    ];
    for (const [input, message] of cases) {
      const err = await errorOf(() => splitPemBundle(input, 'CERTIFICATE'));
      expect(err.code, JSON.stringify(input.slice(0, 60))).toBe('pem_invalid');
      expect(err.message).toMatch(message);
    }
  });

  it('refuses a bundle that mixes in another kind of block', async () => {
    const key = generateKeyPair().privateKeyPem;
    const err = await errorOf(() => splitPemBundle(certs[0] + key, 'CERTIFICATE'));
    expect(err.code).toBe('pem_invalid');
    expect(err.message).toMatch(/"PRIVATE KEY"; expected "CERTIFICATE"/);
    expect(err.message).not.toContain(key.split('\n')[1] as string);
    // Without a label every block is returned.
    expect(splitPemBundle(certs[0] + key)).toHaveLength(2);
  });

  it('refuses PEM text over 64 KiB', async () => {
    const big = certs.join('').repeat(60);
    expect(big.length).toBeGreaterThan(64 * 1024);
    const err = await errorOf(() => splitPemBundle(big, 'CERTIFICATE'));
    expect(err.code).toBe('pem_too_large');
    expect(err.message).toMatch(/at most 65536 bytes/);
  });

  it('writes PEM that parses back to the same DER', () => {
    const der = parseCertificate(certs[0] as string).der;
    const pem = derToPem(der, 'CERTIFICATE');
    expect(pem).toBe(certs[0]);
    expect(pem.split('\n').every((line) => line.length <= 64)).toBe(true);
  });
});

describe('TLS with issued certificates', () => {
  async function listen(options: tls.TlsOptions, onSecure?: (socket: tls.TLSSocket) => void): Promise<{ server: tls.Server; port: number }> {
    const server = tls.createServer(options, (socket) => {
      onSecure?.(socket);
      socket.end('hello\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as AddressInfo).port };
  }

  function connect(options: tls.ConnectionOptions): Promise<{ authorized: boolean; data: string; error?: Error }> {
    return new Promise((resolve) => {
      let data = '';
      const socket = tls.connect(options, () => {
        socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
        socket.on('end', () => resolve({ authorized: socket.authorized, data }));
      });
      socket.on('error', (error) => resolve({ authorized: false, data, error }));
    });
  }

  it('serves a tls-server certificate a client verifies against the CA, by DNS name and by IP', async () => {
    const chain = await buildChain('ec-p256');
    const serverPair = generateKeyPair();
    const serverPem = await issueCertificate({
      profile: 'tls-server',
      subject: { commonName: 'gateway.tollgate.test', organization: 'Tollgate' },
      publicKey: pub(serverPair),
      notAfter: new Date(Date.now() + 30 * DAY),
      dnsNames: ['localhost', 'gateway.tollgate.test'],
      ipAddresses: ['127.0.0.1', '::1'],
      issuer: { certificatePem: chain.root.pem, privateKeyPem: chain.root.pair.privateKeyPem },
    });
    const info = parseCertificate(serverPem);
    expect(info.extendedKeyUsage).toEqual([SERVER_AUTH]);
    expect(info.x509.subjectAltName).toBe('DNS:localhost, DNS:gateway.tollgate.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(info.x509.checkHost('gateway.tollgate.test')).toBe('gateway.tollgate.test');
    expect(info.x509.checkIP('127.0.0.1')).toBe('127.0.0.1');

    const { server, port } = await listen({ key: serverPair.privateKeyPem, cert: serverPem });
    try {
      const byName = await connect({ host: '127.0.0.1', port, servername: 'localhost', ca: chain.root.pem });
      expect(byName.error).toBeUndefined();
      expect(byName.authorized).toBe(true);
      expect(byName.data).toBe('hello\n');

      const byIp = await connect({ host: '127.0.0.1', port, ca: chain.root.pem });
      expect(byIp.error).toBeUndefined();
      expect(byIp.authorized).toBe(true);

      const wrongName = await connect({ host: '127.0.0.1', port, servername: 'other.example', ca: chain.root.pem });
      expect(wrongName.error?.message).toMatch(/altnames/i);

      const otherCa = await buildChain('ec-p256');
      const untrusted = await connect({ host: '127.0.0.1', port, servername: 'localhost', ca: otherCa.root.pem });
      expect((untrusted.error as NodeJS.ErrnoException | undefined)?.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    } finally {
      server.close();
    }
  });

  it('authenticates a device-client certificate in mutual TLS, and the peer certificate parses', async () => {
    const chain = await buildChain('rsa-2048');
    const serverPair = generateKeyPair();
    const serverPem = await issueCertificate({
      profile: 'tls-server',
      subject: { commonName: 'localhost' },
      publicKey: pub(serverPair),
      notAfter: new Date(Date.now() + DAY),
      dnsNames: ['localhost'],
      issuer: { certificatePem: chain.root.pem, privateKeyPem: chain.root.pair.privateKeyPem },
    });
    let peer: ReturnType<typeof certificateInfoFromX509> | undefined;
    let peerAuthorized = false;
    const { server, port } = await listen(
      { key: serverPair.privateKeyPem, cert: serverPem, ca: chain.root.pem, requestCert: true, rejectUnauthorized: true },
      (socket) => {
        peerAuthorized = socket.authorized;
        const x = socket.getPeerX509Certificate();
        if (x) peer = certificateInfoFromX509(x);
      },
    );
    try {
      const result = await connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: chain.root.pem,
        key: chain.device.pair.privateKeyPem,
        // The device presents its certificate and the device CA; the server trusts only the root.
        cert: chain.device.pem + chain.deviceCa.pem,
      });
      expect(result.error).toBeUndefined();
      expect(result.data).toBe('hello\n');
      expect(peerAuthorized).toBe(true);
      expect(peer?.subject).toEqual({ commonName: DEVICE_UUID, organizationalUnit: 'acme' });
      expect(peer?.fingerprint256).toBe(parseCertificate(chain.device.pem).fingerprint256);
    } finally {
      server.close();
    }
  });
});
