/**
 * A stand-in for AWS's instance identity signer: one RSA-2048 key and self-signed certificate per
 * region, and PKCS#7 documents built the way the instance metadata service serves them from
 * `/latest/dynamic/instance-identity/rsa2048`: a CMS SignedData, BER with indefinite lengths, the
 * JSON document as a constructed OCTET STRING, one signer identified by issuer and serial number,
 * signed attributes contentType, signingTime and messageDigest, and no certificates embedded.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign as nodeSign, webcrypto, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asnX509 from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OID } from '../../shared/pki/oids.js';
import { x509 } from '../../shared/pki/peculiar.js';
import { derToPem } from '../../shared/pki/pem.js';

type WebCrypto = ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'];

/** AWS's certificates name this issuer (and subject). */
export const AWS_CERT_NAME = 'C=US, ST=Washington State, L=Seattle, O=Amazon Web Services LLC';

// pkijs types its engine with the DOM's Crypto, which node's webcrypto implements but is not declared as.
export const engine = new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as WebCrypto });

const RSA_PARAMS = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;

/** An instance identity document with every field AWS puts in one. */
export interface IdentityDocument {
  accountId: string;
  architecture: string;
  availabilityZone: string;
  billingProducts: string[] | null;
  devpayProductCodes: string[] | null;
  marketplaceProductCodes: string[] | null;
  imageId: string;
  instanceId: string;
  instanceType: string;
  kernelId: string | null;
  pendingTime: string;
  privateIp: string;
  ramdiskId: string | null;
  region: string;
  version: string;
  [extra: string]: unknown;
}

export function identityDocument(overrides: Partial<IdentityDocument> = {}): IdentityDocument {
  const region = overrides.region ?? 'eu-west-1';
  return {
    accountId: '123456789012',
    architecture: 'x86_64',
    availabilityZone: `${region}a`,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: 'ami-0abcdef1234567890',
    instanceId: 'i-0123456789abcdef0',
    instanceType: 't3.medium',
    kernelId: null,
    pendingTime: new Date(Date.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    privateIp: '172.31.12.34',
    ramdiskId: null,
    version: '2017-09-30',
    ...overrides,
    region,
  };
}

/** The document as IMDS prints it: two-space indent, `" : "` between names and values. */
export function formatDocument(doc: Readonly<Record<string, unknown>>): string {
  const lines = Object.entries(doc).map(([k, v]) => `  ${JSON.stringify(k)} : ${JSON.stringify(v)}`);
  return `{\n${lines.join(',\n')}\n}`;
}

interface RegionKey {
  privateKey: webcrypto.CryptoKey;
  certificate: pkijs.Certificate;
  certificatePem: string;
}

export interface SignOptions {
  region: string;
  /** The signed signingTime attribute; now if absent. */
  signingTime?: Date;
  /**
   * `impostor`: signed by a key that is not the region's, while naming the region's certificate
   * as the signer (a forged signer identifier).
   */
  key?: 'region' | 'impostor';
  /** Encapsulated bytes to put in place of what was signed (a tampered document). */
  replaceContent?: Uint8Array;
  /** `rsaEncryption` as OpenSSL writes it (the default), or `sha256WithRSAEncryption`. */
  signatureAlgorithm?: 'rsaEncryption' | 'sha256WithRSAEncryption';
  /** `ber`: indefinite lengths as IMDS serves it (the default); `der`: definite lengths. */
  encoding?: 'ber' | 'der';
  /** Extra signed attributes (e.g. a second signingTime). */
  extraSignedAttributes?: pkijs.Attribute[];
}

function rawOf(x: { toBER(): ArrayBuffer }): Buffer {
  return Buffer.from(x.toBER());
}

/** A constructed element with indefinite length: tag, 0x80, contents, end-of-contents. */
function indefinite(tag: number, ...children: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([tag, 0x80]), ...children, Buffer.from([0, 0])]);
}

/** ContentInfo { signedData } around the parts of a SignedData, in the layout IMDS uses. */
function encodeSignedData(signedData: pkijs.SignedData, content: Uint8Array, encoding: 'ber' | 'der'): Buffer {
  if (encoding === 'der') {
    const contentInfo = new pkijs.ContentInfo({ contentType: OID.signedData, content: signedData.toSchema(true) });
    return rawOf(contentInfo.toSchema());
  }
  const version = rawOf(new asn1js.Integer({ value: signedData.version }));
  const digestAlgorithms = rawOf(new asn1js.Set({ value: signedData.digestAlgorithms.map((a) => a.toSchema()) }));
  const signerInfos = rawOf(new asn1js.Set({ value: signedData.signerInfos.map((s) => s.toSchema()) }));
  const encapContentInfo = indefinite(
    0x30,
    rawOf(new asn1js.ObjectIdentifier({ value: OID.data })),
    indefinite(0xa0, indefinite(0x24, rawOf(new asn1js.OctetString({ valueHex: content })))),
  );
  return indefinite(
    0x30,
    rawOf(new asn1js.ObjectIdentifier({ value: OID.signedData })),
    indefinite(0xa0, indefinite(0x30, version, digestAlgorithms, encapContentInfo, signerInfos)),
  );
}

function signedAttributes(content: Uint8Array, digest: 'sha1' | 'sha256', signingTime: Date, extra: pkijs.Attribute[]): pkijs.SignedAndUnsignedAttributes {
  return new pkijs.SignedAndUnsignedAttributes({
    type: 0,
    attributes: [
      new pkijs.Attribute({ type: OID.contentType, values: [new asn1js.ObjectIdentifier({ value: OID.data })] }),
      new pkijs.Attribute({ type: OID.signingTime, values: [new asn1js.UTCTime({ valueDate: signingTime })] }),
      new pkijs.Attribute({ type: OID.messageDigest, values: [new asn1js.OctetString({ valueHex: createHash(digest).update(content).digest() })] }),
      ...extra,
    ],
  });
}

export class AwsTestCa {
  private constructor(
    private readonly keys: Map<string, RegionKey>,
    private readonly impostor: webcrypto.CryptoKey,
  ) {}

  /** One key and certificate per region (serial numbers differ, the issuer name is AWS's). */
  static async create(regions: readonly string[]): Promise<AwsTestCa> {
    const keys = new Map<string, RegionKey>();
    for (const region of regions) {
      const pair = (await webcrypto.subtle.generateKey(RSA_PARAMS, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: webcrypto.getRandomValues(Buffer.alloc(8)).toString('hex').replace(/^[89a-f]/, '1'),
        name: AWS_CERT_NAME,
        notBefore: new Date(Date.now() - 86_400_000),
        notAfter: new Date(Date.now() + 10 * 365 * 86_400_000),
        keys: pair,
        signingAlgorithm: RSA_PARAMS,
      });
      keys.set(region, {
        privateKey: pair.privateKey,
        certificate: pkijs.Certificate.fromBER(new Uint8Array(cert.rawData)),
        certificatePem: cert.toString('pem'),
      });
    }
    const impostor = (await webcrypto.subtle.generateKey(RSA_PARAMS, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    return new AwsTestCa(keys, impostor.privateKey);
  }

  private region(region: string): RegionKey {
    const key = this.keys.get(region);
    if (!key) throw new Error(`the test CA has no key for region ${region}`);
    return key;
  }

  certificatePem(region: string): string {
    return this.region(region).certificatePem;
  }

  /** Writes `<region>.pem` files into `dir`; returns the `certificates` map for the configuration. */
  writeCertificates(dir: string, regions: readonly string[] = [...this.keys.keys()]): Record<string, string> {
    mkdirSync(dir, { recursive: true });
    const out: Record<string, string> = {};
    for (const region of regions) {
      const file = join(dir, `${region}.pem`);
      writeFileSync(file, this.certificatePem(region));
      out[region] = file;
    }
    return out;
  }

  /** The base64 (one line) PKCS#7 of `content`, as IMDS serves it once its line breaks are removed. */
  async signContent(content: Uint8Array, options: SignOptions): Promise<string> {
    const key = this.region(options.region);
    const signedData = new pkijs.SignedData({
      version: 1,
      encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data, eContent: new asn1js.OctetString({ valueHex: content }) }),
      signerInfos: [
        new pkijs.SignerInfo({
          version: 1,
          sid: new pkijs.IssuerAndSerialNumber({ issuer: key.certificate.issuer, serialNumber: key.certificate.serialNumber }),
          signedAttrs: signedAttributes(content, 'sha256', options.signingTime ?? new Date(), options.extraSignedAttributes ?? []),
        }),
      ],
    });
    const signingKey = options.key === 'impostor' ? this.impostor : key.privateKey;
    await signedData.sign(signingKey, 0, 'SHA-256', undefined, engine);
    const signerInfo = signedData.signerInfos[0] as pkijs.SignerInfo;
    signerInfo.signatureAlgorithm = new pkijs.AlgorithmIdentifier({
      algorithmId: options.signatureAlgorithm === 'sha256WithRSAEncryption' ? OID.sha256WithRsa : OID.rsaEncryption,
      algorithmParams: new asn1js.Null(),
    });
    const carried = options.replaceContent ?? content;
    signedData.encapContentInfo = new pkijs.EncapsulatedContentInfo({ eContentType: OID.data, eContent: new asn1js.OctetString({ valueHex: carried }) });
    return encodeSignedData(signedData, carried, options.encoding ?? 'ber').toString('base64');
  }

  async signIdentityDocument(doc: Readonly<Record<string, unknown>>, options: SignOptions): Promise<string> {
    return this.signContent(Buffer.from(formatDocument(doc), 'utf8'), options);
  }

  /**
   * A document signed the way the legacy `/pkcs7` endpoint signs: DSA over SHA-1, naming the
   * region's certificate as the signer.
   */
  signIdentityDocumentDsa(doc: Readonly<Record<string, unknown>>, options: { region: string; signingTime?: Date; dsaKey: KeyObject }): string {
    const key = this.region(options.region);
    const content = Buffer.from(formatDocument(doc), 'utf8');
    const attrs = signedAttributes(content, 'sha1', options.signingTime ?? new Date(), []);
    const toSign = rawOf(attrs.toSchema());
    toSign[0] = 0x31; // RFC 5652 section 5.4: the signature covers the attributes as a SET OF
    const signature = nodeSign('sha1', toSign, options.dsaKey);
    const signedData = new pkijs.SignedData({
      version: 1,
      digestAlgorithms: [new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha1, algorithmParams: new asn1js.Null() })],
      encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data, eContent: new asn1js.OctetString({ valueHex: content }) }),
      signerInfos: [
        new pkijs.SignerInfo({
          version: 1,
          sid: new pkijs.IssuerAndSerialNumber({ issuer: key.certificate.issuer, serialNumber: key.certificate.serialNumber }),
          digestAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha1, algorithmParams: new asn1js.Null() }),
          signedAttrs: attrs,
          signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.dsaWithSha1 }),
          signature: new asn1js.OctetString({ valueHex: signature }),
        }),
      ],
    });
    return encodeSignedData(signedData, content, 'ber').toString('base64');
  }
}

/** A DSA key of the size AWS's /pkcs7 certificates carry. */
export function dsaKey(): KeyObject {
  return generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 }).privateKey;
}

/**
 * A self-signed DSA certificate shaped like AWS's /pkcs7 ones (WebCrypto has no DSA, so it is
 * assembled from its ASN.1 and signed with node:crypto).
 */
export function dsaCertificatePem(key: KeyObject = dsaKey()): string {
  const name = AsnConvert.parse(new x509.Name(AWS_CERT_NAME).toArrayBuffer(), asnX509.Name);
  const signatureAlgorithm = new asnX509.AlgorithmIdentifier({ algorithm: OID.dsaWithSha1 });
  const tbsCertificate = new asnX509.TBSCertificate({
    version: asnX509.Version.v1,
    serialNumber: new Uint8Array([0x01, 0x23]).buffer,
    signature: signatureAlgorithm,
    issuer: name,
    subject: name,
    validity: new asnX509.Validity({ notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) }),
    subjectPublicKeyInfo: AsnConvert.parse(createPublicKey(key).export({ type: 'spki', format: 'der' }), asnX509.SubjectPublicKeyInfo),
  });
  const signatureValue = nodeSign('sha1', Buffer.from(AsnConvert.serialize(tbsCertificate)), key);
  const cert = new asnX509.Certificate({ tbsCertificate, signatureAlgorithm, signatureValue: new Uint8Array(signatureValue).buffer });
  return derToPem(new Uint8Array(AsnConvert.serialize(cert)), 'CERTIFICATE');
}
