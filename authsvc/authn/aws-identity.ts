/**
 * AWS EC2 instance identity: a virtual machine proves which AWS account, region and instance it is
 * with the PKCS#7 signature AWS's instance metadata service hands it, and gets the labels of the
 * first mapping that matches (a factory among them). It grants nothing by itself: the ACL decides.
 *
 * Credentials: HTTP Basic, username `aws-instance-identity`, password the base64 (newlines removed)
 * of `/latest/dynamic/instance-identity/rsa2048`: a CMS SignedData (RFC 5652) whose encapsulated
 * content is the JSON identity document, signed with signed attributes (contentType, signingTime,
 * messageDigest). AWS ships no certificate in it, so the certificate configured for the document's
 * own region is the one and only signer trusted; a certificate carried in the message is ignored.
 *
 * Algorithms: RSA (PKCS#1 v1.5) over SHA-256/384/512, which is what the rsa2048 endpoint uses. The
 * legacy `/pkcs7` endpoint signs with DSA over SHA-1; DSA is NOT supported (WebCrypto, which pkijs
 * verifies with, has no DSA, and DSA-1024/SHA-1 is too weak to vouch for anything): such documents
 * are refused with `aws_algorithm_unsupported`, and a DSA certificate in the configuration stops
 * start-up.
 *
 * Freshness and replay: the signed `signingTime` must be at most `maxAgeSeconds` old (and not
 * ahead of the clock by more than a small skew). AWS signs the document when the instance is
 * launched or (re)started, so that is also the window after start in which a VM can use it. Per instance, the newest signingTime accepted is
 * remembered, and an older document for that instance is refused from then on. On PostgreSQL that
 * memory is shared by every realm instance (and survives restarts); on SQLite it is per process and
 * bounded (the least recently seen instances are forgotten first). It stops an old document once a
 * newer one has been used, not the reuse of a document that is still fresh. While fresh, the document is a bearer
 * credential.
 */
import { X509Certificate, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { z } from 'zod';
import type { AwsIdentityConfig } from '../../shared/config-accounts.js';
import { invalidInput } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { OID } from '../../shared/pki/oids.js';
import { readPemBlocks } from '../../shared/pki/pem.js';
import type { BasicCredentials } from '../credentials.js';
import { MemoryReplayMemory, type ReplayMemory } from '../../shared/store/shared-state.js';
import type { AccountAuthenticator, AuthnContext, AuthnOutcome, Labels } from './types.js';
import { PASS } from './types.js';

type WebCrypto = ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'];

/** The Basic username that announces an instance identity document as the password. */
export const AWS_IDENTITY_USERNAME = 'aws-instance-identity';

/**
 * Longest password looked at, in base64 characters. An rsa2048 PKCS#7 of a realistic document
 * (about 560 bytes of JSON) is about 1.5 KB of base64, 2.1 KB once in a Basic header; anything
 * past this is not one.
 */
export const MAX_PKCS7_BASE64 = 8192;
/** Longest identity document accepted; real ones are about 500 bytes. */
export const MAX_DOCUMENT_BYTES = 4096;
/** How far ahead of the realm's clock a signingTime may be (clocks are never perfectly in step). */
export const MAX_FUTURE_SKEW_MS = 60_000;
/** Instances whose newest signingTime is remembered for replay refusal. */
export const REPLAY_MEMORY_ENTRIES = 10_000;


const DIGESTS: Readonly<Record<string, string>> = { [OID.sha256]: 'SHA-256', [OID.sha384]: 'SHA-384', [OID.sha512]: 'SHA-512' };
/** Signature algorithms accepted, and the digest each one implies (rsaEncryption takes the signer's). */
const RSA_SIGNATURES: Readonly<Record<string, string | null>> = {
  [OID.rsaEncryption]: null,
  [OID.sha256WithRsa]: OID.sha256,
  [OID.sha384WithRsa]: OID.sha384,
  [OID.sha512WithRsa]: OID.sha512,
};
const DSA_OIDS: ReadonlySet<string> = new Set([OID.dsa, OID.dsaWithSha1, OID.dsaWithSha256]);

// Canonical padded base64 (RFC 4648 section 4), as IMDS emits it once its line breaks are removed.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The fields of the identity document that decide anything; AWS may add others, which are ignored. */
const documentSchema = z.object({
  accountId: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
  instanceId: z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an EC2 instance id'),
  region: z.string().regex(REGION, 'must be an AWS region'),
  pendingTime: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'must be a timestamp'),
  availabilityZone: z.string().max(64).nullish(),
  architecture: z.string().max(64).nullish(),
  imageId: z.string().max(64).nullish(),
  instanceType: z.string().max(64).nullish(),
  privateIp: z.string().max(64).nullish(),
  version: z.string().max(64).nullish(),
});

export type InstanceIdentityDocument = z.infer<typeof documentSchema>;

export interface AwsIdentityOptions {
  /** Directory relative certificate paths are resolved against (the configuration file's). */
  baseDir: string;
  log?: Logger;
  /** Where the newest accepted signingTime per instance is kept (default: this process's memory). */
  replay?: ReplayMemory;
}

interface RegionSigner {
  certificate: pkijs.Certificate;
  notBefore: number;
  notAfter: number;
}

type Refusal = Extract<AuthnOutcome, { decision: 'refuse' }>;

function refuse(reason: string, message: string, account?: string): Refusal {
  return account === undefined ? { decision: 'refuse', reason, message } : { decision: 'refuse', reason, message, account };
}

/** Reads and checks every configured certificate; any problem stops start-up, naming the file. */
function loadSigners(config: AwsIdentityConfig, baseDir: string): Map<string, RegionSigner> {
  const signers = new Map<string, RegionSigner>();
  for (const [region, path] of Object.entries(config.certificates)) {
    const file = resolve(baseDir, path);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
      throw invalidInput('aws_certificate_unreadable', `cannot read the AWS certificate for region ${region} from ${file} (${why})`, { region, file });
    }
    let der: Buffer;
    let x509: X509Certificate;
    try {
      const blocks = readPemBlocks(text, ['CERTIFICATE']);
      if (blocks.length !== 1) throw new Error(`it holds ${blocks.length} certificates; exactly one is expected`);
      der = (blocks[0] as { der: Buffer }).der;
      x509 = new X509Certificate(der);
    } catch (e) {
      throw invalidInput(
        'aws_certificate_invalid',
        `the AWS certificate for region ${region} in ${file} is not a PEM certificate: ${e instanceof Error ? e.message : String(e)}`,
        { region, file },
      );
    }
    const key = x509.publicKey;
    if (key.asymmetricKeyType === 'dsa') {
      throw invalidInput(
        'aws_certificate_unsupported',
        `${file} (region ${region}) holds AWS's DSA certificate, for the /pkcs7 endpoint, which is not supported; configure the region's RSA-2048 certificate (for the rsa2048 endpoint)`,
        { region, file },
      );
    }
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (key.asymmetricKeyType !== 'rsa' || bits < 2048) {
      throw invalidInput(
        'aws_certificate_unsupported',
        `${file} (region ${region}) holds a ${key.asymmetricKeyType ?? 'unknown'}${bits ? ` ${bits}-bit` : ''} key; AWS's RSA-2048 certificate is expected`,
        { region, file },
      );
    }
    signers.set(region, {
      certificate: pkijs.Certificate.fromBER(der),
      notBefore: Date.parse(x509.validFrom),
      notAfter: Date.parse(x509.validTo),
    });
  }
  return signers;
}

/** The one value of a signed attribute, or why there is not exactly one. */
function singleAttribute(signerInfo: pkijs.SignerInfo, type: string): { value: unknown } | { problem: string } {
  const matches = (signerInfo.signedAttrs?.attributes ?? []).filter((a) => a.type === type);
  if (matches.length !== 1) return { problem: matches.length === 0 ? 'is missing' : 'appears more than once' };
  const values = (matches[0] as pkijs.Attribute).values;
  if (values.length !== 1) return { problem: 'does not have exactly one value' };
  return { value: values[0] };
}

/** Strict base64 -> CMS SignedData, or the reason it is not one. */
function parseSignedData(password: string): { signedData: pkijs.SignedData } | Refusal {
  if (password.length > MAX_PKCS7_BASE64) {
    return refuse('aws_document_too_large', `the instance identity PKCS#7 is longer than ${MAX_PKCS7_BASE64} base64 characters`);
  }
  if (password.length % 4 !== 0 || !BASE64.test(password)) {
    return refuse('aws_document_malformed', 'the password is not the canonical base64 of a PKCS#7 (remove the line breaks IMDS puts in it)');
  }
  const der = Buffer.from(password, 'base64');
  if (der.toString('base64') !== password) {
    return refuse('aws_document_malformed', 'the password is not the canonical base64 of a PKCS#7');
  }
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(der);
  } catch {
    return refuse('aws_document_malformed', 'the password is not a PKCS#7 (not BER-encoded ASN.1)');
  }
  if (parsed.offset === -1 || parsed.result.error !== '') {
    return refuse('aws_document_malformed', 'the password is not a PKCS#7 (not BER-encoded ASN.1)');
  }
  if (parsed.offset !== der.length) return refuse('aws_document_malformed', 'the PKCS#7 is followed by unexpected bytes');
  try {
    const contentInfo = new pkijs.ContentInfo({ schema: parsed.result });
    if (contentInfo.contentType !== OID.signedData) {
      return refuse('aws_document_malformed', 'the PKCS#7 is not a SignedData message');
    }
    return { signedData: new pkijs.SignedData({ schema: contentInfo.content }) };
  } catch {
    return refuse('aws_document_malformed', 'the password is not a CMS SignedData message');
  }
}

function parseDocument(bytes: Uint8Array): { document: InstanceIdentityDocument } | Refusal {
  if (bytes.length > MAX_DOCUMENT_BYTES) {
    return refuse('aws_document_too_large', `the instance identity document is ${bytes.length} bytes; at most ${MAX_DOCUMENT_BYTES} are accepted`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    return refuse('aws_document_malformed', 'the signed content is not a JSON instance identity document');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return refuse('aws_document_malformed', 'the signed content is not a JSON object');
  }
  const result = documentSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || 'document';
    return refuse('aws_document_malformed', `the instance identity document's ${where} ${issue?.message ?? 'is invalid'}`);
  }
  return { document: result.data };
}

function isRefusal(x: object): x is Refusal {
  return 'decision' in x;
}

/** The single signer and the identity document a SignedData carries, its algorithms checked. */
function signedContent(signedData: pkijs.SignedData): { signerInfo: pkijs.SignerInfo; content: Uint8Array } | Refusal {
  if (signedData.signerInfos.length !== 1) {
    return refuse('aws_document_malformed', `the PKCS#7 has ${signedData.signerInfos.length} signers; an instance identity has exactly one`);
  }
  const signerInfo = signedData.signerInfos[0] as pkijs.SignerInfo;
  const eContent = signedData.encapContentInfo.eContent;
  if (signedData.encapContentInfo.eContentType !== OID.data || !eContent) {
    return refuse('aws_document_malformed', 'the PKCS#7 does not carry an identity document as its content');
  }
  if (!signerInfo.signedAttrs) {
    return refuse('aws_document_malformed', 'the PKCS#7 has no signed attributes (contentType, signingTime, messageDigest)');
  }
  const digestOid = signerInfo.digestAlgorithm.algorithmId;
  const signatureOid = signerInfo.signatureAlgorithm.algorithmId;
  if (DSA_OIDS.has(signatureOid)) {
    return refuse(
      'aws_algorithm_unsupported',
      'DSA-signed documents (the /pkcs7 endpoint) are not accepted; send the rsa2048 document (/latest/dynamic/instance-identity/rsa2048)',
    );
  }
  if (!(signatureOid in RSA_SIGNATURES) || !(digestOid in DIGESTS)) {
    return refuse(
      'aws_algorithm_unsupported',
      `the PKCS#7 is signed with ${signatureOid} over ${digestOid === OID.sha1 ? 'SHA-1' : digestOid}; only RSA over SHA-256, SHA-384 or SHA-512 is accepted`,
    );
  }
  const implied = RSA_SIGNATURES[signatureOid];
  if (implied && implied !== digestOid) return refuse('aws_algorithm_unsupported', 'the PKCS#7 signature and digest algorithms disagree');
  return { signerInfo, content: new Uint8Array((eContent as asn1js.OctetString).getValue()) };
}

/** Verifies the signature with the region's configured certificate only; null when it verifies. */
async function verifySignature(signedData: pkijs.SignedData, signer: RegionSigner, engine: pkijs.CryptoEngine, region: string, account: string): Promise<Refusal | null> {
  // Only the configured certificate is a candidate signer: whatever the message carries is dropped.
  signedData.certificates = [signer.certificate];
  let verified = false;
  try {
    verified = await signedData.verify({ signer: 0, checkChain: false }, engine);
  } catch (e) {
    const code = e instanceof pkijs.SignedDataVerifyError ? e.code : undefined;
    const why =
      code === 3
        ? `it is not signed by the certificate configured for region ${region}`
        : code === 15
          ? 'the document does not match its signature'
          : 'the signature cannot be verified';
    return refuse('aws_signature_invalid', `the instance identity signature is invalid: ${why}`, account);
  }
  if (!verified) {
    return refuse('aws_signature_invalid', `the instance identity signature is invalid: it does not verify with the certificate configured for region ${region}`, account);
  }
  return null;
}

/** The signed signingTime (ms), held to the certificate's validity, the clock and the maximum age. */
function signingTimeOf(signerInfo: pkijs.SignerInfo, signer: RegionSigner, region: string, account: string, now: number, maxAgeSeconds: number): number | Refusal {
  const contentType = singleAttribute(signerInfo, OID.contentType);
  if ('problem' in contentType || !(contentType.value instanceof asn1js.ObjectIdentifier) || contentType.value.getValue() !== OID.data) {
    return refuse('aws_document_malformed', 'the signed contentType attribute does not name the data content type', account);
  }
  const attribute = singleAttribute(signerInfo, OID.signingTime);
  if ('problem' in attribute) return refuse('aws_document_malformed', `the signed signingTime attribute ${attribute.problem}`, account);
  const value = attribute.value;
  const signingTime = value instanceof asn1js.UTCTime || value instanceof asn1js.GeneralizedTime ? value.toDate().getTime() : Number.NaN;
  if (!Number.isFinite(signingTime)) return refuse('aws_document_malformed', 'the signed signingTime attribute is not a time', account);
  if (signingTime < signer.notBefore || signingTime > signer.notAfter) {
    return refuse('aws_signature_invalid', `the document was signed outside the validity of the certificate configured for region ${region}`, account);
  }
  if (signingTime > now + MAX_FUTURE_SKEW_MS) {
    return refuse('aws_document_stale', `the document's signingTime ${new Date(signingTime).toISOString()} is in the future; check the clocks`, account);
  }
  if (now - signingTime > maxAgeSeconds * 1000) {
    return refuse('aws_document_stale', `the document was signed at ${new Date(signingTime).toISOString()}, more than ${maxAgeSeconds} seconds ago; fetch a fresh one`, account);
  }
  return signingTime;
}

type Mapping = AwsIdentityConfig['mappings'][number];

function mappingOf(config: AwsIdentityConfig, document: InstanceIdentityDocument, account: string): Mapping | Refusal {
  const accountMappings = config.mappings.filter((m) => m.accountId === document.accountId);
  const mapping = accountMappings.find(
    (m) => (m.regions === undefined || m.regions.includes(document.region)) && (m.instanceIds === undefined || m.instanceIds.includes(document.instanceId)),
  );
  if (mapping) return mapping;
  return refuse(
    'aws_account_unmapped',
    accountMappings.length === 0
      ? `AWS account ${document.accountId} is not mapped to a factory`
      : `instance ${document.instanceId} in ${document.region} is not among those mapped for AWS account ${document.accountId}`,
    account,
  );
}

export function createAwsIdentityAuthenticator(config: AwsIdentityConfig, options: AwsIdentityOptions): AccountAuthenticator {
  const signers = loadSigners(config, options.baseDir);
  const log = options.log?.child({ authenticator: 'aws' });
  // pkijs types its engine with the DOM's Crypto, which node's webcrypto implements but is not declared as.
  const engine = new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as WebCrypto });
  const replay = options.replay ?? new MemoryReplayMemory(REPLAY_MEMORY_ENTRIES);

  async function authenticate(credentials: BasicCredentials, context: AuthnContext): Promise<AuthnOutcome> {
    if (credentials.username !== AWS_IDENTITY_USERNAME) return PASS;
    const cms = parseSignedData(credentials.password);
    if (isRefusal(cms)) return cms;
    const signed = signedContent(cms.signedData);
    if (isRefusal(signed)) return signed;
    const parsedDocument = parseDocument(signed.content);
    if (isRefusal(parsedDocument)) return parsedDocument;
    const { document } = parsedDocument;
    const account = `${document.accountId}/${document.instanceId}`;
    const signer = signers.get(document.region);
    if (!signer) return refuse('aws_region_untrusted', `no AWS certificate is configured for region ${document.region}`, account);
    const invalid = await verifySignature(cms.signedData, signer, engine, document.region, account);
    if (invalid) return invalid;

    // Everything below is read from signed data.
    const signingTime = signingTimeOf(signed.signerInfo, signer, document.region, account, context.now, config.maxAgeSeconds);
    if (typeof signingTime !== 'number') return signingTime;
    const mapping = mappingOf(config, document, account);
    if (isRefusal(mapping)) return mapping;
    if (!(await replay.accept(account, signingTime, context.now))) {
      return refuse('aws_document_replayed', 'a newer document was already accepted for this instance; this older one is refused', account);
    }

    // The identity labels come last so that configured labels cannot contradict the document.
    const labels: Labels = {
      ...mapping.labels,
      factory: [mapping.factory],
      awsAccount: [document.accountId],
      awsRegion: [document.region],
      instanceId: [document.instanceId],
    };
    log?.debug({ account, region: document.region, factory: mapping.factory }, 'instance identity accepted');
    return { decision: 'accept', principal: { origin: 'aws', account, labels } };
  }

  return { origin: 'aws', authenticate };
}
