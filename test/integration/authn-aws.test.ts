import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_IDENTITY_USERNAME } from '../../authsvc/authn/aws-identity.js';
import { AwsTestCa, identityDocument } from '../support/aws-identity.js';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { startTopology, type Topology } from '../support/topology.js';

/**
 * Virtual machines on AWS pull with their signed instance identity document, through the real
 * realm and the real registry, with skopeo as the client. A test CA stands in for AWS's signer.
 */
const tools = realBinaries(['docker-registry', 'skopeo']);

const ACCOUNT = '123456789012';
const DENIED = /denied|unauthorized|authentication required/i;

describe.skipIf(!tools.available)('AWS instance identity against a real registry', () => {
  let t: Topology;
  let skopeo: Skopeo;
  let image: OciImage;
  let aws: AwsTestCa;
  let stranger: AwsTestCa;
  let certDir: string;
  const presented: string[] = [];

  /** A document for `instanceId`, signed `secondsAgo` seconds ago by the region's key (or another CA's). */
  async function document(instanceId: string, secondsAgo = 2, ca: AwsTestCa = aws): Promise<string> {
    const pkcs7 = await ca.signIdentityDocument(identityDocument({ accountId: ACCOUNT, instanceId, region: 'eu-west-1' }), {
      region: 'eu-west-1',
      signingTime: new Date(Date.now() - secondsAgo * 1000),
    });
    presented.push(pkcs7);
    return pkcs7;
  }

  /** The realm's own answer for a pull of `repo`, to read its reason. */
  const realm = (pkcs7: string, repo = 'demo/app') =>
    fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=repository:${repo}:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`${AWS_IDENTITY_USERNAME}:${pkcs7}`).toString('base64')}` },
    });

  async function expectRefusedByRealm(pkcs7: string, reason: string): Promise<void> {
    const res = await realm(pkcs7);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { reason } }] });
  }

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'tollgate-aws-certs-'));
    aws = await AwsTestCa.create(['eu-west-1']);
    stranger = await AwsTestCa.create(['eu-west-1']);
    t = await startTopology({
      authsvc: {
        awsIdentity: {
          certificates: aws.writeCertificates(certDir),
          maxAgeSeconds: 300,
          mappings: [{ accountId: ACCOUNT, factory: 'demo' }],
        },
        acl: [{ match: { origin: 'aws', name: '${labels:factory}/**' }, actions: ['pull'] }],
      },
    });
    skopeo = skopeoFor(t.registryHost, t.dir);
    image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from the demo factory\n');
    // `tollgate init` made the demo factory; each factory's CI pushes its own image with a factory token.
    const created = t.cli(['factory', 'create', 'other']);
    expect(created.status, created.stderr).toBe(0);
    for (const factory of ['demo', 'other']) {
      const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', factory, '--scope', 'containers:write', '--description', 'CI']);
      const pushed = await skopeo.push(image, `${factory}/app`, ci.username, ci.secret);
      expect(pushed.status, pushed.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  it('lets a VM of the mapped account pull its factory\'s image with a fresh document', async () => {
    const pkcs7 = await document('i-0a1b2c3d4e5f60001');
    const pulled = await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, pkcs7);
    expect(pulled.stderr).toBe('');
    expect(pulled.status).toBe(0);
    // The realm's token names the instance as its subject.
    const res = await realm(pkcs7);
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { sub: string; access: unknown };
    expect(claims.sub).toBe(`${ACCOUNT}/i-0a1b2c3d4e5f60001`);
    expect(claims.access).toEqual([{ type: 'repository', name: 'demo/app', actions: ['pull'] }]);
  });

  it('reads nothing of another factory and pushes nowhere', async () => {
    const pkcs7 = await document('i-0a1b2c3d4e5f60002');
    const foreign = await skopeo.pull('other/app', AWS_IDENTITY_USERNAME, pkcs7);
    expect(foreign.status).not.toBe(0);
    expect(foreign.stderr).toMatch(DENIED);
    const pushed = await skopeo.push(image, 'demo/from-vm', AWS_IDENTITY_USERNAME, pkcs7);
    expect(pushed.status).not.toBe(0);
    expect(pushed.stderr).toMatch(DENIED);
    const overwrite = await skopeo.push(image, 'demo/app', AWS_IDENTITY_USERNAME, pkcs7, 'v2');
    expect(overwrite.status).not.toBe(0);
  });

  it('refuses an older document once a newer one was used for the instance', async () => {
    const older = await document('i-0a1b2c3d4e5f60003', 120);
    const newer = await document('i-0a1b2c3d4e5f60003', 5);
    expect((await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, newer)).status).toBe(0);
    const replayed = await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, older);
    expect(replayed.status).not.toBe(0);
    expect(replayed.stderr).toMatch(DENIED);
    await expectRefusedByRealm(older, 'aws_document_replayed');
    // The newer one stays usable while it is fresh.
    expect((await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, newer)).status).toBe(0);
  });

  it('refuses a stale document', async () => {
    const stale = await document('i-0a1b2c3d4e5f60004', 600);
    const pulled = await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, stale);
    expect(pulled.status).not.toBe(0);
    expect(pulled.stderr).toMatch(DENIED);
    await expectRefusedByRealm(stale, 'aws_document_stale');
  });

  it('refuses a document signed by a key that is not configured', async () => {
    const forged = await document('i-0a1b2c3d4e5f60005', 2, stranger);
    const pulled = await skopeo.pull('demo/app', AWS_IDENTITY_USERNAME, forged);
    expect(pulled.status).not.toBe(0);
    expect(pulled.stderr).toMatch(DENIED);
    await expectRefusedByRealm(forged, 'aws_signature_invalid');
  });

  it('audits under the instance and keeps the documents out of the audit trail and the logs', () => {
    const audit = t.cliJson<{ actor: string; action: string; reason: string | null }[]>(['audit-all', '--limit', '1000']);
    expect(audit.some((a) => a.actor === `aws:${ACCOUNT}/i-0a1b2c3d4e5f60001` && a.action !== 'realm.refused')).toBe(true);
    expect(audit.some((a) => a.actor === `aws:${ACCOUNT}/i-0a1b2c3d4e5f60003` && a.reason === 'aws_document_replayed')).toBe(true);
    const everything = JSON.stringify(audit);
    const logs = Object.values(t.logs).map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : ''));
    expect(presented.length).toBeGreaterThan(0);
    for (const pkcs7 of presented) {
      // The signature sits at the end of the message; no part of it may show anywhere.
      const tail = pkcs7.slice(-120, -20);
      expect(everything).not.toContain(tail);
      for (const text of logs) expect(text).not.toContain(tail);
    }
  });
});
