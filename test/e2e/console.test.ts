import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { realBinaries } from '../support/binaries.js';
import { launchBrowser, seriousA11yViolations, type Browser } from '../support/browser.js';
import { nonConforming, type RecordedAnswer } from '../support/openapi-check.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc-provider.js';
import { ROOT, startTopology, type Topology } from '../support/topology.js';

/**
 * The web console in real Chromium against the real services: the admin listener serving the
 * console and the API, the gateway, the realm and the registry, a real OpenID Connect provider,
 * and the real credential helper of an enrolled device. Each page is screenshotted into
 * test-results/console/ and checked with axe-core; every admin API answer the browser received is
 * checked against the served OpenAPI document at the end.
 */
const tools = realBinaries(['docker-registry', 'chromium', 'tar']);
const SHOTS = resolve(ROOT, 'test-results', 'console');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Token {
  id: string;
  username: string;
  secret: string;
}

describe.skipIf(!tools.available)('the web console in Chromium', { timeout: 90_000 }, () => {
  let t: Topology;
  let provider: OidcTestProvider;
  let browser: Browser;
  let page: Page & { cspViolations: string[] };
  let base: string;
  let admin: Token;
  let reader: Token;
  let work: string;
  const answers: RecordedAnswer[] = [];
  /** A device enrolled through the console: its UUID and files. */
  const device = { uuid: randomUUID(), dir: '' };

  /** Takes the page's screenshot and checks it: no serious or critical axe finding, no CSP report. */
  async function checkPage(name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    expect(await seriousA11yViolations(page, axeSource), `accessibility of ${name}`).toEqual([]);
    expect(page.cspViolations, `CSP reports on ${name}`).toEqual([]);
  }

  async function signInWithToken(secret: string): Promise<void> {
    await page.goto(`${base}/signin`);
    await page.getByLabel('Token', { exact: true }).fill(secret);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
  }

  async function signOut(): Promise<void> {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Tollgate console' }).waitFor();
  }

  async function csr(uuid: string, factory = 'demo'): Promise<{ csrPem: string; keyPem: string }> {
    const pair = generateKeyPair('ec-p256');
    const csrPem = await createCsr({ subject: { commonName: uuid, organizationalUnit: factory }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'] });
    return { csrPem, keyPem: pair.privateKeyPem };
  }

  /** The device's credential helper, as container tools run it: registry on stdin, answer on stdout. */
  function helper(verb: 'get' | 'erase', dir: string) {
    const r = spawnSync(join(t.binDir, 'docker-credential-tollgate'), [verb], {
      input: t.registryHost,
      env: { ...process.env, TOLLGATE_DEVICE_CONFIG: join(dir, 'device.json'), TOLLGATE_CACHE_DIR: join(dir, 'cache') },
      encoding: 'utf8',
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** The realm's answer to Basic credentials for a pull. */
  async function realm(username: string, password: string): Promise<number> {
    const r = await fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=repository:demo/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
    });
    await r.body?.cancel();
    return r.status;
  }

  /** The UUIDs of the factory's devices, by the admin API. */
  async function enrolled(): Promise<Set<string>> {
    const r = await fetch(`${base}/v1/factories/demo/devices?limit=1000`, { headers: { authorization: `Bearer ${admin.secret}` } });
    return new Set(((await r.json()) as { items: { uuid: string }[] }).items.map((d) => d.uuid));
  }

  beforeAll(async () => {
    provider = await startOidcProvider({ accounts: { alice: { email: 'alice@example.com', groups: ['demo-admins'] }, bob: { email: 'bob@example.com', groups: ['visitors'] } } });
    t = await startTopology({
      authsvc: { oidc: { issuer: provider.issuer, audience: [provider.clientId], clientId: provider.clientId } },
      admin: {
        console: {
          oidc: {
            clientId: provider.consoleClientId,
            roles: [{ claim: 'groups', value: 'demo-admins', factory: 'demo', scopes: ['devices:read', 'devices:write', 'tokens:write'] }],
          },
        },
      },
    });
    base = `http://127.0.0.1:${t.adminPort}`;
    work = join(t.dir, 'console');
    mkdirSync(work);
    mkdirSync(SHOTS, { recursive: true });
    admin = t.cliJson<Token>(['token', 'create', 'demo', '--scope', 'devices:read', '--scope', 'devices:write', '--scope', 'tokens:write', '--scope', 'containers:read', '--description', 'factory admin']);
    reader = t.cliJson<Token>(['token', 'create', 'demo', '--scope', 'devices:read', '--description', 'auditor']);

    browser = await launchBrowser(join(work, 'downloads'));
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    browser.context.on('response', async (r) => {
      const url = new URL(r.url());
      if (url.origin !== base || !url.pathname.startsWith('/v1/')) return;
      const status = r.status();
      const body = status >= 300 && status < 400 ? '' : await r.text().catch(() => '');
      answers.push({ method: r.request().method(), url: url.pathname + url.search, status, contentType: r.headers()['content-type'] ?? '', body });
    });
    page = await browser.page();
    page.setDefaultTimeout(10_000);
  }, 120_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await page?.screenshot({ path: join(SHOTS, `failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}.png`), fullPage: true });
  });

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    await provider?.stop();
  });

  it('signs a factory admin in with a token, enrolls a device from a CSR, finds it, revokes it, and its credential helper is refused', async () => {
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Admin API token' }).waitFor();
    await checkPage('signin');
    // The console's own headers: a strict policy, no inline script allowed.
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(index.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    expect(await index.text()).not.toMatch(/<script>(?!<\/)/);

    await signInWithToken(admin.secret);
    const cookies = await browser.context.cookies(base);
    const session = cookies.find((c) => c.name === 'tollgate_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate('document.cookie')).toBe('');
    await page.getByText(`token:${admin.id}`).waitFor();

    // Enroll from a CSR: the key never leaves the device.
    device.dir = join(work, 'device');
    mkdirSync(join(device.dir, 'cache'), { recursive: true });
    const { csrPem, keyPem } = await csr(device.uuid);
    writeFileSync(join(device.dir, 'device.csr'), csrPem);
    writeFileSync(join(device.dir, 'device.key'), keyPem, { mode: 0o600 });
    await page.getByRole('link', { name: 'Enroll', exact: true }).click();
    await page.getByRole('heading', { name: 'Enroll devices' }).waitFor();
    await page.getByLabel('CSR or certificate file').setInputFiles(join(device.dir, 'device.csr'));
    await page.getByLabel('Name (optional)').fill('kiosk-17');
    await page.getByRole('button', { name: 'Enroll', exact: true }).click();
    await page.getByRole('status').filter({ hasText: `Enrolled ${device.uuid}` }).waitFor();
    await checkPage('enroll');
    const [certificate] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download certificate' }).click()]);
    await certificate.saveAs(join(device.dir, 'device.pem'));
    writeFileSync(join(device.dir, 'gateway-ca.pem'), readFileSync(join(t.dir, 'certs', 'tls', 'ca.pem')));
    writeFileSync(
      join(device.dir, 'device.json'),
      JSON.stringify({ gateway: `https://127.0.0.1:${t.gatewayPort}`, certificate: 'device.pem', privateKey: 'device.key', caBundle: 'gateway-ca.pem', registries: [t.registryHost] }),
    );
    const before = helper('get', device.dir);
    expect(before.status, before.stdout + before.stderr).toBe(0);
    const held = JSON.parse(before.stdout) as { Username: string; Secret: string };
    expect(held.Username).toBe(device.uuid);
    expect(await realm(held.Username, held.Secret)).toBe(200);

    // Find it by a prefix of its UUID.
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByLabel('UUID or name').fill(device.uuid.slice(0, 8));
    await page.getByRole('link', { name: device.uuid }).waitFor();
    await page.getByLabel('UUID or name').fill('kiosk');
    await page.getByRole('link', { name: device.uuid }).waitFor();
    await page.getByLabel('UUID or name').fill('');
    await checkPage('devices');
    await page.getByRole('link', { name: device.uuid }).click();
    await page.getByRole('heading', { name: /kiosk-17/ }).waitFor();
    const subject = await page.locator('dt:has-text("Subject") + dd').textContent();
    expect(subject?.split(', ').sort()).toEqual([`CN=${device.uuid}`, 'OU=demo']);
    await page.getByText('ec-p256').waitFor();
    await page.getByRole('cell', { name: 'token.minted' }).first().waitFor();
    await checkPage('device');

    // Revoke, behind a confirmation that says what it does.
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Revocation is final').waitFor();
    await dialog.getByLabel('Reason (kept in the audit trail)').fill('lost in transit');
    await checkPage('device-revoke-confirm');
    await dialog.getByRole('button', { name: 'Revoke device' }).click();
    await page.locator('h1 .badge-revoked').waitFor();
    await page.getByRole('cell', { name: 'device.revoked' }).waitFor();

    // The device's helper is refused by the gateway, and the token it held by the realm.
    expect(helper('erase', device.dir).status).toBe(0);
    const after = helper('get', device.dir);
    expect(after.status).toBe(1);
    expect(after.stdout).toContain('the device is revoked (device_revoked)');
    expect(await realm(held.Username, held.Secret)).toBe(401);
    // The audit trail names who did it: the token the admin signed in with.
    const trail = t.cliJson<{ actor: string; action: string; reason: string | null }[]>(['audit', 'demo', '--target', device.uuid]);
    expect(trail.find((r) => r.action === 'device.revoked')).toMatchObject({ actor: `token:${admin.id}`, reason: 'lost in transit' });
  });

  it('issues a test device in the browser and its downloaded bundle works with the credential helper', async () => {
    await page.getByRole('link', { name: 'Enroll', exact: true }).click();
    await page.getByLabel('Registry (host:port, optional)').fill(t.registryHost);
    const [bundle] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Issue test device and download its bundle' }).click()]);
    const tarFile = join(work, bundle.suggestedFilename());
    await bundle.saveAs(tarFile);
    const unpacked = join(work, 'test-device');
    mkdirSync(unpacked);
    expect(spawnSync('tar', ['xf', tarFile, '-C', unpacked]).status).toBe(0);
    const dir = join(unpacked, 'device');
    mkdirSync(join(dir, 'cache'));
    const got = helper('get', dir);
    expect(got.status, got.stdout + got.stderr).toBe(0);
    const uuid = (JSON.parse(got.stdout) as { Username: string }).Username;
    expect(t.cliJson<{ test: boolean }>(['device', 'show', 'demo', uuid]).test).toBe(true);
  });

  it('enrolls nothing from ten CSRs when one is bad, and all of them once it is fixed', async () => {
    const dir = join(work, 'bulk');
    mkdirSync(dir);
    const uuids = Array.from({ length: 10 }, () => randomUUID());
    const files: string[] = [];
    for (const [i, uuid] of uuids.entries()) {
      // Row 7 names another factory in its OU.
      const file = join(dir, `device-${i + 1}.csr`);
      writeFileSync(file, (await csr(uuid, i === 6 ? 'elsewhere' : 'demo')).csrPem);
      files.push(file);
    }
    await page.getByRole('link', { name: 'Enroll', exact: true }).click();
    await page.getByLabel('Files').setInputFiles(files);
    await page.getByText('10 rows read.').waitFor();
    await page.getByRole('button', { name: 'Enroll 10 devices' }).click();
    await page.getByRole('alert').filter({ hasText: 'bulk_rows_refused' }).waitFor();
    const rows = page.getByRole('table', { name: 'Result per row' }).getByRole('row');
    await expect(rows.filter({ hasText: 'factory_mismatch' }).getByRole('cell').first().textContent()).resolves.toBe('7');
    expect(await rows.filter({ hasText: 'not written' }).count()).toBe(9);
    await checkPage('enroll-bulk-refused');
    const none = await enrolled();
    for (const uuid of uuids) expect(none.has(uuid), uuid).toBe(false);

    // The nine good ones again, as a CSV of PEMs with names.
    const csv = ['name,pem', ...files.filter((_, i) => i !== 6).map((f, i) => `bulk-${i + 1},"${readFileSync(f, 'utf8').trim()}"`)].join('\r\n');
    writeFileSync(join(dir, 'devices.csv'), csv);
    await page.getByLabel('Files').setInputFiles(join(dir, 'devices.csv'));
    await page.getByRole('button', { name: 'Enroll 9 devices' }).click();
    await page.getByRole('status').filter({ hasText: 'Enrolled 9 devices.' }).waitFor();
    const nine = await enrolled();
    for (const [i, uuid] of uuids.entries()) expect(nine.has(uuid), uuid).toBe(i !== 6);
    expect(t.cliJson<{ name: string }>(['device', 'show', 'demo', uuids[0]!]).name).toBe('bulk-1');
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('link', { name: uuids[0]! }).waitFor();
    await checkPage('devices-list');
  });

  it('spells out what revoking a CA cuts off, and creates an online CA', async () => {
    await page.getByRole('link', { name: 'CAs' }).click();
    await page.getByRole('heading', { name: 'Device CAs' }).waitFor();
    const cas = t.cliJson<{ id: string; commonName: string }[]>(['ca', 'list', 'demo']);
    const live = t.cliJson<{ state: string; caId: string }[]>(['device', 'list', 'demo', '--limit', '1000']).filter((d) => d.caId === cas[0]!.id && d.state !== 'revoked').length;
    expect(live).toBeGreaterThanOrEqual(10);
    await page.getByRole('row', { name: new RegExp(cas[0]!.commonName) }).getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByText(`${live} devices will be cut off`).waitFor();
    await checkPage('ca-revoke-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect(t.cliJson<{ state: string }[]>(['ca', 'list', 'demo'])[0]!.state).toBe('active');

    await page.getByLabel('Common name (optional)').fill('demo line 2 CA');
    await page.getByRole('button', { name: 'Create CA' }).click();
    await page.getByRole('cell', { name: /demo line 2 CA/ }).waitFor();
    await page.getByRole('button', { name: 'Get a code' }).click();
    await page.getByText(/openssl req -new/).waitFor();
    await checkPage('cas');
  });

  it('creates a token whose secret is shown once, with a copy button and the registry login lines', async () => {
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Description').fill('CI pull');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shown = page.locator('.secret');
    await shown.waitFor();
    const secret = (await shown.locator('code.wrap').textContent())!;
    expect(secret).toMatch(/^tga_/);
    await shown.getByText(/docker login <registry> -u tok_/).waitFor();
    await shown.getByText(/skopeo copy --dest-creds/).waitFor();
    await shown.getByRole('button', { name: 'Copy secret' }).click();
    await shown.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    await checkPage('tokens');
    const whoami = await fetch(`${base}/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    expect(((await whoami.json()) as { token: { scopes: string[] } }).token.scopes).toEqual(['containers:read']);
    await shown.getByRole('button', { name: 'Done, hide the secret' }).click();
    expect(await page.getByText(secret).count()).toBe(0);
  });

  it('filters the audit trail and exports it as NDJSON and CSV', async () => {
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByLabel('Actor').fill(`token:${admin.id}`);
    // The unfiltered page already shows device.revoked: wait for the answer to the filtered query, then for its rows.
    const filtered = page.waitForResponse((r) => r.url().includes('outcome=success') && r.url().includes(encodeURIComponent(`token:${admin.id}`)));
    await page.getByLabel('Outcome').selectOption('success');
    await filtered;
    await expect.poll(() => page.getByRole('cell', { name: `device:${device.uuid}` }).count()).toBe(0);
    await page.getByRole('cell', { name: 'device.revoked' }).first().waitFor();
    await checkPage('audit');
    const [ndjson] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export NDJSON' }).click()]);
    const lines = readFileSync((await ndjson.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { actor: string; action: string });
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.every((l) => l.actor === `token:${admin.id}`)).toBe(true);
    expect(lines.map((l) => l.action)).toContain('device.revoked');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const text = readFileSync((await csv.path())!, 'utf8');
    expect(text.split('\r\n')[0]).toBe('id,at,actor,action,outcome,target,reason,source,details');
    expect(text.trim().split('\r\n')).toHaveLength(lines.length + 1);
  });

  it("shows the factory settings within the operator's limits and saves them", async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByText("operator's limit 24").waitFor();
    await page.getByLabel(/Longest test certificate/).fill('4');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await checkPage('settings');
    expect(t.cliJson<{ testCertMaxHours: number }>(['factory', 'settings', 'demo']).testCertMaxHours).toBe(4);
  });

  it('offers a read-only token no action, and the server refuses a crafted POST without the CSRF token', async () => {
    await signOut();
    await signInWithToken(reader.secret);
    expect(await page.getByRole('link', { name: 'Enroll' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    const victim = t.cliJson<{ uuid: string; state: string }[]>(['device', 'list', 'demo', '--state', 'active'])[0]!;
    await page.goto(`${base}/devices/${victim.uuid}`);
    await page.getByRole('heading', { name: 'History' }).waitFor();
    expect(await page.getByRole('button', { name: /^(Disable|Enable|Revoke|Delete)$/ }).count()).toBe(0);
    await checkPage('device-read-only');

    const post = (csrf: string | null) =>
      page.evaluate(
        `fetch('/v1/factories/demo/devices/${victim.uuid}/revoke', { method: 'POST', credentials: 'same-origin', headers: Object.assign({ 'content-type': 'application/json' }, ${csrf ? `{ 'x-csrf-token': ${JSON.stringify(csrf)} }` : '{}'}), body: '{}' }).then(async (r) => [r.status, (await r.json()).error.code])`,
      );
    expect(await post(null)).toEqual([403, 'csrf_token_invalid']);
    expect(await post('forged')).toEqual([403, 'csrf_token_invalid']);
    const csrf = (await page.evaluate(`fetch('/v1/session').then((r) => r.json())`)) as { csrfToken: string };
    expect(await post(csrf.csrfToken)).toEqual([403, 'scope_missing']);
    expect(t.cliJson<{ state: string }>(['device', 'show', 'demo', victim.uuid]).state).toBe('active');
  });

  it('signs a person in through the OpenID Connect provider, and audits their actions under their identity', async () => {
    await signOut();
    await page.getByRole('link', { name: 'Sign in with your company account' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await page.getByText('oidc:alice@example.com').waitFor();
    const target = t.cliJson<{ uuid: string }[]>(['device', 'list', 'demo', '--state', 'active'])[0]!.uuid;
    await page.goto(`${base}/devices/${target}`);
    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disable device' }).click();
    await page.locator('h1 .badge-disabled').waitFor();
    const trail = t.cliJson<{ actor: string; action: string }[]>(['audit', 'demo', '--target', target]);
    expect(trail.find((r) => r.action === 'device.disabled')?.actor).toBe('oidc:alice@example.com');
    const signIns = t.cliJson<{ actor: string }[]>(['audit', 'demo', '--action', 'console.signed_in']);
    expect(signIns.map((r) => r.actor)).toContain('oidc:alice@example.com');
  });

  it('refuses a person whose claims map to no factory', async () => {
    await signOut();
    // Bob's groups name no console role: the provider signs him in, the console does not.
    const login = await fetch(`${base}/v1/session/oidc`, { redirect: 'manual' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const { callback } = await provider.completeLogin(login.headers.get('location')!, 'bob');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie } });
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toBe('/signin?error=console_role_missing');
    expect(back.headers.get('set-cookie') ?? '').not.toMatch(/tollgate_session=[A-Za-z0-9_-]/);
  });

  it('signs the operator in with the one-time link of tollgate console, once', async () => {
    const printed = t.cli(['console']);
    expect(printed.status, printed.stderr).toBe(0);
    const link = /^\s+(http:\/\/\S+#code=\S+)$/m.exec(printed.stdout)![1]!;
    expect(printed.stdout).toContain(`console: ${base}/`);
    await page.goto(link);
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await page.getByText('operator', { exact: true }).waitFor();
    await page.getByLabel('Factory').waitFor();
    expect(page.url()).not.toContain('code=');
    await signOut();
    await page.goto(link);
    await page.getByRole('alert').filter({ hasText: 'signin_code_invalid' }).waitFor();
  });

  it('answered every request with what the served OpenAPI document describes', async () => {
    const document = (await (await fetch(`${base}/v1/openapi.json`)).json()) as object;
    const checked = answers.filter((a) => a.url !== '/v1/openapi.json');
    expect(checked.length).toBeGreaterThan(50);
    expect([...new Set(checked.map((a) => a.status))].sort()).toEqual(expect.arrayContaining([200, 201, 204, 303, 400, 401, 403]));
    expect(await nonConforming(document, checked)).toEqual([]);
  });
});
