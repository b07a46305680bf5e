import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../../admin/server.js';
import { AdminService } from '../../admin/service.js';
import { gatewayUrl, loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair, parseCertificate } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqliteStore } from '../../shared/store/index.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';
import { tableSnapshot } from '../support/db-snapshot.js';

/** The built CLI (dist/), run as a child process the way an operator or CI runs it. */

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SECRET = /tg[adr]_[A-Za-z0-9_-]{49}/g;

let dir: string;
let configFile: string;
let baseEnv: NodeJS.ProcessEnv;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Asynchronous on purpose: the remote-mode tests serve the admin API from this very process. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ status: code ?? -1, stdout, stderr }));
  });
}

async function cliJson<T>(args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  const r = await cli([...args, '--json'], env);
  if (r.status !== 0) throw new Error(`tollgate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** One error line, `tollgate: <message> (<code>)`, and nothing else on stderr. */
function expectError(r: Run, status: number, code: string): void {
  expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status, stderr: expect.stringMatching(new RegExp(`^tollgate: [^\\n]+ \\(${code}\\)\\n$`)) });
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const snapshot = () => tableSnapshot(join(dir, 'data', 'tollgate.db'));

const mode = (path: string) => statSync(path).mode & 0o777;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
  configFile = join(dir, 'tollgate.yml');
  writeFileSync(configFile, 'dataDir: data\npkiDir: certs\npki:\n  testCertMaxHours: 24\n');
  baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  baseEnv.TOLLGATE_CONFIG = configFile;
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate (local mode, as the operator)', () => {
  it('init creates the development PKI, the store and the registry files', async () => {
    const r = await cliJson<{ database: string; gatewayCa: string; registry: { rootBundle: string } }>(['init']);
    expect(r.database).toBe(join(dir, 'data', 'tollgate.db'));
    for (const p of [r.database, r.gatewayCa, r.registry.rootBundle, join(dir, 'certs', 'tls', 'server.key')]) expect(existsSync(p), p).toBe(true);
    expect(mode(join(dir, 'certs', 'tls', 'server.key'))).toBe(0o600);
    // Again: nothing to do, same answer.
    expect((await cli(['init'])).status).toBe(0);
  });

  it('factory create: ok, invalid name (exit 2), duplicate (exit 1)', async () => {
    const ok = await cli(['factory', 'create', 'acme']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('acme');
    expectError(await cli(['factory', 'create', 'Bad Name']), 2, 'factory_name_invalid');
    expectError(await cli(['factory', 'create', 'acme']), 1, 'factory_exists');
    const list = await cliJson<{ name: string }[]>(['factory', 'list']);
    expect(list.map((f) => f.name)).toEqual(['acme', 'demo']);
    expectError(await cli(['factory', 'show', 'nope']), 1, 'factory_not_found');
  });

  it('ca create makes an online CA', async () => {
    const ca = await cliJson<{ id: string; kind: string; commonName: string }>(['ca', 'create', 'acme', '--cn', 'ACME line 1', '--days', '365']);
    expect(ca).toMatchObject({ kind: 'online', commonName: 'ACME line 1' });
    const list = await cliJson<{ id: string }[]>(['ca', 'list', 'acme']);
    expect(list.map((c) => c.id)).toContain(ca.id);
    expectError(await cli(['ca', 'create', 'acme', '--days', 'ten']), 2, 'days_invalid');
  });

  it('device issue-test writes the key (0600), certificates and device.json', async () => {
    const out = join(dir, 'ci-device');
    const r = await cliJson<{ device: { uuid: string; test: boolean; certificate: { notAfter: string } }; files: Record<string, string> }>([
      'device', 'issue-test', 'acme', '--out', out, '--hours', '2', '--registry', '127.0.0.1:5000', '--registry', 'registry.example.com',
    ]);
    expect(r.device.test).toBe(true);
    const lifetime = Date.parse(r.device.certificate.notAfter) - Date.now();
    expect(lifetime).toBeGreaterThan(1.9 * 3_600_000);
    expect(lifetime).toBeLessThanOrEqual(2 * 3_600_000);

    expect(mode(out)).toBe(0o700);
    expect(mode(join(out, 'device.key'))).toBe(0o600);
    for (const f of ['device.pem', 'ca.pem', 'gateway-ca.pem', 'device.json']) expect(mode(join(out, f)), f).toBe(0o644);
    expect(JSON.parse(readFileSync(join(out, 'device.json'), 'utf8'))).toEqual({
      gateway: 'https://127.0.0.1:8443',
      certificate: 'device.pem',
      privateKey: 'device.key',
      caBundle: 'gateway-ca.pem',
      registries: ['127.0.0.1:5000', 'registry.example.com'],
    });
    const cert = parseCertificate(readFileSync(join(out, 'device.pem'), 'utf8'));
    expect(cert.subject).toMatchObject({ commonName: r.device.uuid, organizationalUnit: 'acme' });
    expect(readFileSync(join(out, 'gateway-ca.pem'), 'utf8')).toBe(readFileSync(join(dir, 'certs', 'tls', 'ca.pem'), 'utf8'));
    expect(readFileSync(join(out, 'device.key'), 'utf8')).toContain('PRIVATE KEY');

    // The same directory again: refused before anything is enrolled.
    const before = snapshot();
    expectError(await cli(['device', 'issue-test', 'acme', '--out', out]), 2, 'output_exists');
    expect(snapshot()).toEqual(before);
  });

  it('device issue-test takes a given UUID and an RSA key, and prints uuid and expiry', async () => {
    const uuid = randomUUID();
    const out = join(dir, 'rsa-device');
    const r = await cli(['device', 'issue-test', 'acme', '--out', out, '--uuid', uuid, '--key', 'rsa-2048', '--minutes', '30']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(uuid);
    expect(r.stdout).toMatch(/expires:\s+\d{4}-\d\d-\d\dT/);
    expect(parseCertificate(readFileSync(join(out, 'device.pem'), 'utf8')).key.type).toBe('rsa');
    expectError(await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'x'), '--key', 'dsa']), 2, 'key_algorithm_invalid');
    expectError(await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'x'), '--uuid', 'NOT-A-UUID']), 2, 'device_uuid_invalid');
    expectError(await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'x'), '--hours', '9999']), 2, 'hours_invalid');
    expectError(await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'x'), '--hours', '100']), 2, 'lifetime_exceeds_policy');
    expectError(await cli(['device', 'issue-test', 'acme']), 2, 'usage_option_missing');
  });

  it('device enroll from a CSR file writes the device files, then show/disable/enable/revoke/delete', async () => {
    const uuid = randomUUID();
    const pair = generateKeyPair('ec-p256');
    const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'acme' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
    const csrFile = join(dir, 'device.csr');
    writeFileSync(csrFile, csr);
    const out = join(dir, 'enrolled');
    const r = await cli(['device', 'enroll', 'acme', '--csr', csrFile, '--name', 'kiosk 1', '--days', '30', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(uuid);
    expect(r.stdout).toContain('device.key'); // where to put the key the device kept
    for (const f of ['device.pem', 'ca.pem', 'gateway-ca.pem', 'device.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(existsSync(join(out, 'device.key'))).toBe(false);

    const shown = await cliJson<{ uuid: string; name: string; state: string; history: { action: string }[] }>(['device', 'show', 'acme', uuid]);
    expect(shown).toMatchObject({ uuid, name: 'kiosk 1', state: 'active' });
    expect(shown.history.map((h) => h.action)).toContain('device.enrolled');
    expect((await cli(['device', 'disable', 'acme', uuid, '--reason', 'maintenance'])).status).toBe(0);
    expect((await cliJson<{ uuid: string }[]>(['device', 'list', 'acme', '--state', 'disabled'])).map((d) => d.uuid)).toEqual([uuid]);
    expect((await cli(['device', 'enable', 'acme', uuid])).status).toBe(0);
    expect((await cli(['device', 'revoke', 'acme', uuid, '--reason', 'stolen'])).status).toBe(0);
    expectError(await cli(['device', 'enable', 'acme', uuid]), 1, 'device_state_transition');
    const audit = await cliJson<{ action: string }[]>(['audit', 'acme', '--target', uuid]);
    expect(audit.map((a) => a.action)).toEqual(['device.enrolled', 'device.disabled', 'device.enabled', 'device.revoked']);
    expect((await cli(['device', 'delete', 'acme', uuid])).status).toBe(0);
    expectError(await cli(['device', 'show', 'acme', uuid]), 1, 'device_not_found');
  });

  it('refuses bad input files with exit 2 and leaves the database unchanged', async () => {
    const garbage = join(dir, 'garbage.csr');
    writeFileSync(garbage, 'this is not a certificate signing request\n');
    const huge = join(dir, 'huge.csr');
    writeFileSync(huge, 'A'.repeat(70 * 1024));
    const binary = join(dir, 'binary.csr');
    writeFileSync(binary, Buffer.from([0x30, 0x82, 0xff, 0xfe, 0x00, 0xc3]));
    const before = snapshot();
    expectError(await cli(['device', 'enroll', 'acme', '--csr', garbage]), 2, 'pem_invalid');
    expectError(await cli(['device', 'enroll', 'acme', '--csr', join(dir, 'missing.csr')]), 2, 'file_not_found');
    expectError(await cli(['device', 'enroll', 'acme', '--csr', huge]), 2, 'file_too_large');
    expectError(await cli(['device', 'enroll', 'acme', '--csr', binary]), 2, 'file_not_text');
    expectError(await cli(['device', 'enroll', 'acme', '--csr', dir]), 2, 'file_not_regular');
    expectError(await cli(['ca', 'add', 'acme', '--cert', garbage]), 2, 'pem_invalid');
    expect(snapshot()).toEqual(before);
  });

  it('refuses usage mistakes with exit 2 and one line naming them', async () => {
    expectError(await cli(['device', 'enroll', 'acme', '--bogus']), 2, 'usage_unknown_option');
    expectError(await cli(['device', 'enroll', 'acme', '--csr']), 2, 'usage_option_value_missing');
    expectError(await cli(['device', 'enroll', 'acme']), 2, 'usage_enrollment_source');
    expectError(await cli(['device', 'show', 'acme']), 2, 'usage_argument_missing');
    expectError(await cli(['device', 'show', 'acme', 'a', 'b']), 2, 'usage_argument_unexpected');
    expectError(await cli(['device', 'fly']), 2, 'usage_unknown_command');
    expectError(await cli(['frobnicate']), 2, 'usage_unknown_command');
    expectError(await cli(['device', 'list', 'acme', '--state', 'gone']), 2, 'state_invalid');
    expectError(await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'y'), '--registry', 'https://r.example/x']), 2, 'registry_invalid');
  });

  it('prints help for everything, and for each command', async () => {
    const all = await cli(['help']);
    expect(all.status).toBe(0);
    expect(all.stdout).toContain('device issue-test');
    const one = await cli(['device', 'enroll', '--help']);
    expect(one.status).toBe(0);
    expect(one.stdout).toMatch(/^usage: tollgate device enroll <factory>/);
    expect((await cli(['help', 'token', 'create'])).stdout).toContain('--scope');
    expect((await cli([])).status).toBe(2);
  });

  it('token create prints the secret exactly once; token list never shows it', async () => {
    const r = await cli(['token', 'create', 'acme', '--scope', 'containers:write', '--scope', 'containers:read', '--description', 'CI push']);
    expect(r.status, r.stderr).toBe(0);
    const secrets = r.stdout.match(SECRET) ?? [];
    expect(secrets).toHaveLength(1);
    expect(r.stdout).toMatch(/skopeo copy --dest-creds tok_[A-Za-z0-9_-]{16}:<secret>/);
    const list = await cli(['token', 'list', 'acme']);
    const listJson = await cli(['token', 'list', 'acme', '--json']);
    for (const out of [list.stdout, listJson.stdout]) {
      expect(out).toContain('CI push');
      expect(out).not.toContain(secrets[0]!);
      expect(out).not.toMatch(SECRET);
    }
    const created = await cliJson<{ id: string; secret: string; username: string }>(['token', 'create', 'acme', '--scope', 'devices:read', '--days', '7']);
    expect(created.secret).toMatch(/^tga_/);
    expect((await cli(['token', 'revoke', 'acme', created.id])).status).toBe(0);
    expectError(await cli(['token', 'create', 'acme']), 2, 'usage_option_missing');
    expectError(await cli(['token', 'create', 'acme', '--scope', 'root']), 2, 'scope_unknown');
  });

  it('config check prints the effective configuration, or names every bad key with exit 2', async () => {
    const good = await cliJson<{ dataDir: string; urls: { gateway: string } }>(['config', 'check']);
    expect(good.dataDir).toBe(join(dir, 'data'));
    expect(good.urls.gateway).toBe('https://127.0.0.1:8443');

    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'gateway:\n  listen:\n    port: 99999\nlog:\n  level: loud\n');
    const r = await cli(['config', 'check', '--config', bad]);
    expect(r.status).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^tollgate: .+ \(config_invalid\)$/);
    expect(r.stderr).toContain('gateway.listen.port');
    expect(r.stderr).toContain('log.level');

    const env = await cli(['config', 'check'], { TOLLGATE_ADMIN_LISTEN_PORT: 'abc' });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('TOLLGATE_ADMIN_LISTEN_PORT');
    expectError(await cli(['config', 'check', '--config', join(dir, 'nope.yml')]), 2, 'config_unreadable');
  });

  it('keys: lists the signing keys and adds one (operator only)', async () => {
    const keys = await cliJson<{ kid: string; status: string }[]>(['keys', 'list']);
    expect(keys.filter((k) => k.status === 'active')).toHaveLength(1);
    const added = await cliJson<{ kid: string; status: string }>(['keys', 'add']);
    expect(added.status).toBe('trusted');
    expectError(await cli(['keys', 'retire', keys.find((k) => k.status === 'active')!.kid]), 1, 'signing_key_active');
    const rc = await cliJson<{ kids: string[]; paths: { rootBundle: string } }>(['registry-config', '--out', join(dir, 'registry-out')]);
    expect(rc.kids).toContain(added.kid);
    expect(existsSync(rc.paths.rootBundle)).toBe(true);
  });
});

describe('tollgate --url (remote mode, with a token)', () => {
  let admin: RunningAdmin;
  let deps: AuthorityDeps & { store: SqliteStore };
  let secret: string;
  let url: string;
  let gateway: string;

  beforeAll(async () => {
    const config = loadConfig({ file: configFile, env: { TOLLGATE_ADMIN_LISTEN_PORT: '0' } });
    gateway = gatewayUrl(config);
    deps = openAuthority(config);
    admin = await startAdmin({ config, deps, log: createLogger('admin-test', 'silent') });
    url = `http://127.0.0.1:${admin.port}`;
    const service = new AdminService(deps);
    secret = (await service.createToken({ kind: 'operator' }, 'acme', { scopes: ['devices:read', 'devices:write', 'devices:test', 'tokens:write'] })).secret;
  });

  afterAll(async () => {
    await admin?.close();
    deps?.store.close();
  });

  const remote = () => ({ TOLLGATE_URL: url, TOLLGATE_TOKEN: secret });

  it('runs the same commands through the admin API', async () => {
    const me = await cliJson<{ kind: string; factory: string }>(['whoami'], remote());
    expect(me).toMatchObject({ kind: 'token', factory: 'acme' });
    const out = join(dir, 'remote-device');
    const issued = await cliJson<{ device: { uuid: string; test: boolean } }>(['device', 'issue-test', 'acme', '--out', out], remote());
    expect(issued.device.test).toBe(true);
    expect(mode(join(out, 'device.key'))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(out, 'device.json'), 'utf8')).gateway).toBe(gateway);
    const list = await cliJson<{ uuid: string }[]>(['device', 'list', 'acme'], remote());
    expect(list.map((d) => d.uuid)).toContain(issued.device.uuid);
    const viaFlag = await cliJson<{ uuid: string }>(['device', 'show', 'acme', issued.device.uuid, '--url', url], { TOLLGATE_TOKEN: secret });
    expect(viaFlag.uuid).toBe(issued.device.uuid);
    const token = await cli(['token', 'create', 'acme', '--scope', 'devices:read'], remote());
    expect(token.status, token.stderr).toBe(0);
    expect(token.stdout.match(SECRET)).toHaveLength(1);
  });

  it('reports refusals with exit 1 and usage mistakes with exit 2', async () => {
    expectError(await cli(['device', 'list', 'demo'], remote()), 1, 'factory_forbidden');
    expectError(await cli(['token', 'create', 'acme', '--scope', 'containers:write'], remote()), 1, 'scope_not_grantable');
    expectError(await cli(['factory', 'create', 'newco'], remote()), 2, 'operator_only');
    expectError(await cli(['keys', 'list'], remote()), 2, 'operator_only');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: url }), 2, 'token_missing');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: url, TOLLGATE_TOKEN: 'tga_wrong' }), 1, 'token_invalid');
    expectError(await cli(['device', 'show', 'acme', '..'], remote()), 2, 'device_uuid_invalid');
    expectError(await cli(['device', 'show', 'acme', '../../whoami'], remote()), 2, 'device_uuid_invalid');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: 'ftp://x', TOLLGATE_TOKEN: secret }), 2, 'url_invalid');
  });

  it('says so when the admin API cannot be reached', async () => {
    const closed = await new Promise<number>((done) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => done(port));
      });
    });
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: `http://127.0.0.1:${closed}`, TOLLGATE_TOKEN: secret }), 1, 'admin_unreachable');
  });
});
