import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_IDENTITY_USERNAME, createAwsIdentityAuthenticator, MAX_PKCS7_BASE64 } from '../../authsvc/authn/aws-identity.js';
import type { AccountAuthenticator, AuthnOutcome } from '../../authsvc/authn/types.js';
import { awsIdentitySchema, type AwsIdentityConfig } from '../../shared/config-accounts.js';
import { isTollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { x509 } from '../../shared/pki/peculiar.js';
import { AwsTestCa, dsaCertificatePem, dsaKey, formatDocument, identityDocument } from '../support/aws-identity.js';

const ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '210987654321';
const INSTANCE = 'i-0123456789abcdef0';

describe('AWS instance identity authenticator', () => {
  let dir: string;
  let ca: AwsTestCa;
  let stranger: AwsTestCa;
  let config: AwsIdentityConfig;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-aws-'));
    ca = await AwsTestCa.create(['eu-west-1', 'us-east-1', 'ap-south-1']);
    stranger = await AwsTestCa.create(['eu-west-1']);
    const files = ca.writeCertificates(dir, ['eu-west-1', 'us-east-1']);
    config = awsIdentitySchema.parse({
      // One relative path (resolved against baseDir), one absolute.
      certificates: { 'eu-west-1': 'eu-west-1.pem', 'us-east-1': files['us-east-1'] },
      maxAgeSeconds: 300,
      mappings: [
        { accountId: OTHER_ACCOUNT, regions: ['us-east-1'], instanceIds: ['i-0aaaaaaaaaaaaaaaa'], factory: 'other' },
        { accountId: ACCOUNT, factory: 'demo', labels: { team: ['ops'], factory: ['spoofed'] } },
      ],
    });
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const make = (overrides: Partial<AwsIdentityConfig> = {}): AccountAuthenticator =>
    createAwsIdentityAuthenticator({ ...config, ...overrides }, { baseDir: dir });
  const ctx = (now = Date.now()) => ({ now, source: '127.0.0.1', service: 'tollgate-registry' });
  const auth = (a: AccountAuthenticator, password: string, now?: number) =>
    a.authenticate({ username: AWS_IDENTITY_USERNAME, password }, ctx(now));
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000);

  function expectRefused(outcome: AuthnOutcome, reason: string, message?: RegExp): void {
    expect(outcome.decision).toBe('refuse');
    if (outcome.decision !== 'refuse') return;
    expect(outcome.reason).toBe(reason);
    if (message) expect(outcome.message).toMatch(message);
  }

  it('accepts a fresh document signed for its region, with the mapping labels', async () => {
    const pkcs7 = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    const outcome = await auth(make(), pkcs7);
    expect(outcome).toEqual({
      decision: 'accept',
      principal: {
        origin: 'aws',
        account: `${ACCOUNT}/${INSTANCE}`,
        // The configured "factory" label cannot override the mapping's factory.
        labels: { team: ['ops'], factory: ['demo'], awsAccount: [ACCOUNT], awsRegion: ['eu-west-1'], instanceId: [INSTANCE] },
      },
    });
  });

  it('reads the layout IMDS serves (BER, indefinite lengths, no certificates) and plain DER alike', async () => {
    const ber = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    const der = Buffer.from(ber, 'base64');
    // ContentInfo, [0] and SignedData all open with indefinite lengths, as AWS's documents do.
    expect(der.subarray(0, 2).toString('hex')).toBe('3080');
    expect(ber.startsWith('MIAGCSqGSIb3DQEHAqCAMIACAQEx')).toBe(true);
    const definite = await ca.signIdentityDocument(identityDocument(), {
      region: 'eu-west-1',
      signingTime: ago(5),
      encoding: 'der',
      signatureAlgorithm: 'sha256WithRSAEncryption',
    });
    expect(Buffer.from(definite, 'base64')[1]).not.toBe(0x80);
    const a = make();
    expect((await auth(a, ber)).decision).toBe('accept');
    expect((await auth(a, definite)).decision).toBe('accept');
  });

  it('uses the certificate of the document\'s own region', async () => {
    const doc = identityDocument({ region: 'us-east-1' });
    const ok = await auth(make(), await ca.signIdentityDocument(doc, { region: 'us-east-1', signingTime: ago(5) }));
    expect(ok.decision).toBe('accept');
    // A document naming eu-west-1, signed with the us-east-1 key.
    const crossed = await ca.signIdentityDocument(identityDocument({ region: 'eu-west-1' }), { region: 'us-east-1', signingTime: ago(5) });
    expectRefused(await auth(make(), crossed), 'aws_signature_invalid', /region eu-west-1/);
  });

  it('refuses a region that has no configured certificate', async () => {
    const pkcs7 = await ca.signIdentityDocument(identityDocument({ region: 'ap-south-1' }), { region: 'ap-south-1', signingTime: ago(5) });
    const outcome = await auth(make(), pkcs7);
    expectRefused(outcome, 'aws_region_untrusted', /ap-south-1/);
    expect(outcome.decision === 'refuse' && outcome.account).toBe(`${ACCOUNT}/${INSTANCE}`);
  });

  it('refuses a tampered document: another account id under the original signature', async () => {
    const original = identityDocument();
    const tampered = Buffer.from(formatDocument({ ...original, accountId: OTHER_ACCOUNT }));
    const pkcs7 = await ca.signIdentityDocument(original, { region: 'eu-west-1', signingTime: ago(5), replaceContent: tampered });
    expectRefused(await auth(make(), pkcs7), 'aws_signature_invalid', /does not match its signature/);
  });

  it('refuses a signature by a key that is not configured, whether or not it claims the configured certificate', async () => {
    const foreign = await stranger.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    expectRefused(await auth(make(), foreign), 'aws_signature_invalid', /not signed by the certificate configured/);
    const forged = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5), key: 'impostor' });
    expectRefused(await auth(make(), forged), 'aws_signature_invalid');
  });

  it('refuses a stale signingTime and one in the future beyond the skew', async () => {
    const a = make();
    const stale = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(301) });
    expectRefused(await auth(a, stale), 'aws_document_stale', /more than 300 seconds ago/);
    const future = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(-300) });
    expectRefused(await auth(a, future), 'aws_document_stale', /in the future/);
    // The realm's clock decides, not the host's: a document fresh now is stale ten minutes later.
    const fresh = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(0) });
    expectRefused(await auth(a, fresh, Date.now() + 600_000), 'aws_document_stale');
    expect((await auth(a, fresh)).decision).toBe('accept');
    // Within the limits on both sides.
    const old = await ca.signIdentityDocument(identityDocument({ instanceId: 'i-0b000000000000001' }), { region: 'eu-west-1', signingTime: ago(290) });
    expect((await auth(a, old)).decision).toBe('accept');
    const ahead = await ca.signIdentityDocument(identityDocument({ instanceId: 'i-0b000000000000002' }), { region: 'eu-west-1', signingTime: ago(-20) });
    expect((await auth(a, ahead)).decision).toBe('accept');
  });

  it('refuses an older document for an instance once a newer one was accepted', async () => {
    const a = make();
    const older = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(120) });
    const newer = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(10) });
    expect((await auth(a, older)).decision).toBe('accept'); // older first is fine ...
    expect((await auth(a, newer)).decision).toBe('accept');
    expectRefused(await auth(a, older), 'aws_document_replayed'); // ... but not after the newer one
    expect((await auth(a, newer)).decision).toBe('accept'); // the newest stays usable while fresh
    // Another instance of the same account has its own history.
    const otherInstance = await ca.signIdentityDocument(identityDocument({ instanceId: 'i-0c000000000000001' }), { region: 'eu-west-1', signingTime: ago(200) });
    expect((await auth(a, otherInstance)).decision).toBe('accept');
    // The memory is the authenticator's (per process): a new one has none.
    expect((await auth(make(), older)).decision).toBe('accept');
  });

  it('does not remember documents it refused', async () => {
    const a = make();
    const unmappedNewer = await ca.signIdentityDocument(identityDocument({ accountId: '999999999999' }), { region: 'eu-west-1', signingTime: ago(10) });
    expectRefused(await auth(a, unmappedNewer), 'aws_account_unmapped');
    const older = await ca.signIdentityDocument(identityDocument({ accountId: '999999999999' }), { region: 'eu-west-1', signingTime: ago(100) });
    expectRefused(await auth(a, older), 'aws_account_unmapped'); // not aws_document_replayed
  });

  it('refuses an unmapped account, and an instance or region outside its mapping', async () => {
    const a = make();
    const unmapped = await ca.signIdentityDocument(identityDocument({ accountId: '999999999999' }), { region: 'eu-west-1', signingTime: ago(5) });
    expectRefused(await auth(a, unmapped), 'aws_account_unmapped', /999999999999 is not mapped/);
    const wrongInstance = await ca.signIdentityDocument(identityDocument({ accountId: OTHER_ACCOUNT, region: 'us-east-1', instanceId: 'i-0bbbbbbbbbbbbbbbb' }), {
      region: 'us-east-1',
      signingTime: ago(5),
    });
    expectRefused(await auth(a, wrongInstance), 'aws_account_unmapped', /i-0bbbbbbbbbbbbbbbb/);
    const wrongRegion = await ca.signIdentityDocument(identityDocument({ accountId: OTHER_ACCOUNT, region: 'eu-west-1', instanceId: 'i-0aaaaaaaaaaaaaaaa' }), {
      region: 'eu-west-1',
      signingTime: ago(5),
    });
    expectRefused(await auth(a, wrongRegion), 'aws_account_unmapped', /eu-west-1/);
    const listed = await ca.signIdentityDocument(identityDocument({ accountId: OTHER_ACCOUNT, region: 'us-east-1', instanceId: 'i-0aaaaaaaaaaaaaaaa' }), {
      region: 'us-east-1',
      signingTime: ago(5),
    });
    const ok = await auth(a, listed);
    expect(ok.decision === 'accept' && ok.principal.labels.factory).toEqual(['other']);
  });

  it('passes credentials that are not an instance identity, without reading the password', async () => {
    const pkcs7 = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    expect(await make().authenticate({ username: 'alice', password: pkcs7 }, ctx())).toEqual({ decision: 'pass' });
    expect(await make().authenticate({ username: 'AWS-Instance-Identity', password: 'x' }, ctx())).toEqual({ decision: 'pass' });
  });

  it('refuses malformed input precisely', async () => {
    const a = make();
    const valid = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    expectRefused(await auth(a, 'not base64!'), 'aws_document_malformed', /base64/);
    // IMDS wraps its base64 at 64 columns; the lines must be joined.
    const wrapped = valid.match(/.{1,64}/g)!.join('\n');
    expectRefused(await auth(a, wrapped), 'aws_document_malformed', /line breaks/);
    expectRefused(await auth(a, valid.replace(/=*$/, '').slice(0, -1) + 'B'), 'aws_document_malformed'); // non-canonical tail or bad length
    expectRefused(await auth(a, Buffer.from('{"accountId":"123456789012"}').toString('base64')), 'aws_document_malformed', /not/);
    // DER, but a certificate, not a CMS message.
    const certDer = new x509.X509Certificate(ca.certificatePem('eu-west-1')).rawData;
    expectRefused(await auth(a, Buffer.from(certDer).toString('base64')), 'aws_document_malformed', /CMS|SignedData/);
    // Bytes after the message.
    expectRefused(await auth(a, Buffer.concat([Buffer.from(valid, 'base64'), Buffer.from([0, 0, 0])]).toString('base64')), 'aws_document_malformed', /unexpected bytes/);
    // Nested beyond reason (asn1js caps the depth; this must be a refusal, not a crash).
    expectRefused(await auth(a, Buffer.concat([Buffer.from('3080'.repeat(1500), 'hex'), Buffer.alloc(3000)]).toString('base64')), 'aws_document_malformed');
    // Truncated.
    expectRefused(await auth(a, Buffer.from(valid, 'base64').subarray(0, 200).toString('base64')), 'aws_document_malformed');
  });

  it('refuses signed content that is not an identity document', async () => {
    const a = make();
    const sign = (content: string) => ca.signContent(Buffer.from(content), { region: 'eu-west-1', signingTime: ago(5) });
    expectRefused(await auth(a, await sign('hello, not JSON')), 'aws_document_malformed', /not a JSON/);
    expectRefused(await auth(a, await sign('[1,2]')), 'aws_document_malformed', /not a JSON object/);
    expectRefused(await auth(a, await ca.signContent(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), { region: 'eu-west-1' })), 'aws_document_malformed');
    const { accountId: _gone, ...noAccount } = identityDocument();
    expectRefused(await auth(a, await sign(formatDocument(noAccount))), 'aws_document_malformed', /accountId/);
    expectRefused(await auth(a, await sign(formatDocument(identityDocument({ instanceId: 'i-0123/../x' })))), 'aws_document_malformed', /instanceId/);
    expectRefused(await auth(a, await sign(formatDocument({ ...identityDocument(), region: 'EU west' }))), 'aws_document_malformed', /region/);
  });

  it('refuses oversized input before parsing it', async () => {
    const a = make();
    expectRefused(await auth(a, 'A'.repeat(MAX_PKCS7_BASE64 + 4)), 'aws_document_too_large');
    const big = await ca.signIdentityDocument({ ...identityDocument(), padding: 'x'.repeat(5000) }, { region: 'eu-west-1', signingTime: ago(5) });
    expect(big.length).toBeLessThanOrEqual(MAX_PKCS7_BASE64);
    expectRefused(await auth(a, big), 'aws_document_too_large', /4096/);
  });

  it('refuses a document with two signingTime attributes', async () => {
    const second = new pkijs.Attribute({ type: '1.2.840.113549.1.9.5', values: [new asn1js.UTCTime({ valueDate: ago(1000) })] });
    const pkcs7 = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5), extraSignedAttributes: [second] });
    expectRefused(await auth(make(), pkcs7), 'aws_document_malformed', /signingTime attribute appears more than once/);
  });

  it('refuses DSA-signed documents (the legacy /pkcs7 endpoint): DSA is not supported', async () => {
    const pkcs7 = ca.signIdentityDocumentDsa(identityDocument(), { region: 'eu-west-1', signingTime: ago(5), dsaKey: dsaKey() });
    expectRefused(await auth(make(), pkcs7), 'aws_algorithm_unsupported', /rsa2048/);
  });

  it('never puts the PKCS#7 in a refusal or a log line', async () => {
    let logged = '';
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((logged += chunk.toString()), done()) });
    const log = createLogger('authsvc', 'debug', sink);
    const a = createAwsIdentityAuthenticator(config, { baseDir: dir, log });
    const good = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    const bad = await stranger.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(5) });
    const stale = await ca.signIdentityDocument(identityDocument(), { region: 'eu-west-1', signingTime: ago(1000) });
    expect((await auth(a, good)).decision).toBe('accept');
    for (const p of [bad, stale]) {
      const outcome = await auth(a, p);
      expect(JSON.stringify(outcome)).not.toContain(p.slice(0, 40));
    }
    expect(logged).toContain('instance identity accepted');
    for (const p of [good, bad, stale]) expect(logged).not.toContain(p.slice(40, 80));
  });

  describe('start-up', () => {
    const startWith = (certificates: Record<string, string>) => () => make({ certificates });

    function expectStartupError(fn: () => unknown, code: string, message: RegExp): void {
      try {
        fn();
      } catch (e) {
        expect(isTollgateError(e)).toBe(true);
        if (!isTollgateError(e)) return;
        expect(e.code).toBe(code);
        expect(e.message).toMatch(message);
        return;
      }
      throw new Error('start-up did not fail');
    }

    it('fails naming the file when a certificate cannot be read', () => {
      expectStartupError(startWith({ 'eu-west-1': 'missing.pem' }), 'aws_certificate_unreadable', new RegExp(`${join(dir, 'missing.pem')}.*ENOENT`));
    });

    it('fails when the file holds no certificate', () => {
      writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
      expectStartupError(startWith({ 'eu-west-1': 'junk.pem' }), 'aws_certificate_invalid', /junk\.pem/);
      writeFileSync(join(dir, 'two.pem'), `${ca.certificatePem('eu-west-1')}\n${ca.certificatePem('us-east-1')}`);
      expectStartupError(startWith({ 'eu-west-1': 'two.pem' }), 'aws_certificate_invalid', /2 certificates/);
    });

    it('fails on a certificate whose key is not RSA of at least 2048 bits', async () => {
      const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const ec = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: 'CN=not aws',
        notBefore: new Date(Date.now() - 1000),
        notAfter: new Date(Date.now() + 86_400_000),
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      });
      writeFileSync(join(dir, 'ec.pem'), ec.toString('pem'));
      expectStartupError(startWith({ 'eu-west-1': 'ec.pem' }), 'aws_certificate_unsupported', /ec\.pem.*RSA-2048/);
      // AWS's DSA certificate (for the /pkcs7 endpoint) is recognised as such.
      writeFileSync(join(dir, 'dsa.pem'), dsaCertificatePem());
      expectStartupError(startWith({ 'eu-west-1': 'dsa.pem' }), 'aws_certificate_unsupported', /dsa\.pem.*DSA certificate.*not supported/);
    });
  });
});
