import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import type { SqlStore } from '../../shared/store/index.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';
import { realBinaries } from '../support/binaries.js';
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
function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('tollgate away from its data', () => {
  it('refuses to work on a store that is not there, and leaves nothing behind in the directory it ran in', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tollgate-elsewhere-'));
    try {
      for (const args of [['factory', 'list'], ['device', 'list', 'demo'], ['audit-all'], ['registry-config']]) {
        // No TOLLGATE_CONFIG: the defaults, relative to the directory it runs in.
        const r = await cli(args, { TOLLGATE_CONFIG: '' }, elsewhere);
        expectError(r, 1, 'store_missing');
        expect(r.stderr).toContain(join(elsewhere, 'data', 'tollgate.db'));
      }
      expect(readdirSync(elsewhere)).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
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
    // A dozen CLI processes in a row: on a busy two-core machine that is more than the default 30 s.
  }, 120_000);

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

describe('the command line itself', () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  it('prints its version with --version and version, in JSON with --json', async () => {
    expect(await cli(['--version'])).toMatchObject({ status: 0, stdout: `tollgate ${version}\n` });
    expect(await cli(['version'])).toMatchObject({ status: 0, stdout: `tollgate ${version}\n` });
    expect(JSON.parse((await cli(['--version', '--json'])).stdout)).toEqual({ version });
    expect(JSON.parse((await cli(['version', '--json'])).stdout)).toEqual({ version });
  });

  it('suggests what a mistyped command or option was meant to be', async () => {
    const group = await cli(['device', 'enrol', 'acme']);
    expectError(group, 2, 'usage_unknown_command');
    expect(group.stderr).toContain('unknown command "device enrol" (did you mean "device enroll"?); see tollgate help device');
    const top = await cli(['devcie', 'list', 'acme']);
    expect(top.stderr).toContain('unknown command "devcie" (did you mean "device"?)');
    const option = await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'z'), '--regsitry', 'r.example']);
    expectError(option, 2, 'usage_unknown_option');
    expect(option.stderr).toContain('has no option --regsitry (did you mean "--registry"?)');
    const help = await cli(['help', 'tokn']);
    expect(help.stderr).toContain('no command "tokn" (did you mean "token"?)');
    // Nothing close: no guess.
    expect((await cli(['frobnicate'])).stderr).not.toContain('did you mean');
  }, 120_000);

  it('with --json, errors are JSON too, with the code and the exit code', async () => {
    for (const [args, status, code] of [
      [['device', 'show', 'acme', randomUUID(), '--json'], 1, 'device_not_found'],
      [['device', 'enrol', 'acme', '--json'], 2, 'usage_unknown_command'],
      [['device', 'list', 'acme', '--bogus', '--json'], 2, 'usage_unknown_option'],
      [['config', 'check', '--json', '--config', join(dir, 'nope.yml')], 2, 'config_unreadable'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.status).toBe(status);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ error: { code, exitCode: status, message: expect.any(String) } });
    }
  }, 120_000);

  it('completes commands, subcommands, options and option values in bash', async () => {
    const script = (await cli(['completion', 'bash'])).stdout;
    const complete = (line: string[]) => {
      const words = ['tollgate', ...line];
      const program = [
        `export PATH=${JSON.stringify(join(ROOT, 'bin'))}:"$PATH"`,
        script,
        `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}`,
        '_tollgate',
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join('\n');
      const r = spawnSync('bash', ['-c', program], { env: baseEnv, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    expect(complete(['dev'])).toEqual(['device']);
    expect(complete(['device', 'iss'])).toEqual(['issue-test']);
    expect(complete(['device', ''])).toEqual(expect.arrayContaining(['enroll', 'issue-test', 'list', 'renew']));
    expect(complete(['device', 'issue-test', 'acme', '--reg'])).toEqual(['--registry']);
    expect(complete(['device', 'issue-test', 'acme', '--key', 'ec'])).toEqual(['ec-p256', 'ec-p384']);
    expect(complete(['audit', 'acme', '--format', ''])).toEqual(['table', 'ndjson', 'csv']);
    expect(complete(['help', 'tok'])).toEqual(['token']);
    expect(complete(['device', 'show', ''])).toEqual([]);
  }, 120_000);

  it.skipIf(!realBinaries(['zsh']).available)('completes in zsh with the same candidates', async () => {
    const script = (await cli(['completion', 'zsh'])).stdout;
    expect(script.startsWith('#compdef tollgate\n')).toBe(true);
    const program = [
      `export PATH=${JSON.stringify(join(ROOT, 'bin'))}:"$PATH"`,
      'compadd() { print -l -- "${@[2,-1]}" }',
      '_files() { print -- "(files)" }',
      script,
      'words=(tollgate device iss); CURRENT=3; _tollgate',
      'words=(tollgate token create acme --sc); CURRENT=5; _tollgate',
      'words=(tollgate device show ""); CURRENT=4; _tollgate',
    ].join('\n');
    const r = spawnSync('zsh', ['-f', '-c', program], { env: baseEnv, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l !== '')).toEqual(['issue-test', '--scope', '(files)']);
    expectError(await cli(['completion', 'fish']), 2, 'shell_unsupported');
  });

  it('config check shows where the configuration came from in its header only', async () => {
    const human = await cli(['config', 'check']);
    expect(human.stdout).toContain(`# configuration is valid (source: ${configFile})`);
    expect(human.stdout).not.toMatch(/^source:/m);
    const defaults = await cli(['config', 'check'], { TOLLGATE_CONFIG: '' });
    expect(defaults.stdout).toContain('(source: built-in defaults)');
    expect(defaults.stdout).not.toContain('source: null');
    expect(await cliJson<Record<string, unknown>>(['config', 'check'])).not.toHaveProperty('source');
  });

  it('token create --creds-file writes the secret to the file and nowhere else', async () => {
    const file = join(dir, 'ci.creds');
    const r = await cli(['token', 'create', 'acme', '--scope', 'containers:write', '--creds-file', file]);
    expect(r.status, r.stderr).toBe(0);
    const [username, secret] = readFileSync(file, 'utf8').trim().split(':');
    expect(secret).toMatch(/^tga_/);
    expect(mode(file)).toBe(0o600);
    expect(r.stdout).not.toContain(secret!);
    expect(r.stdout).not.toMatch(SECRET);
    expect(r.stdout).toContain(`username: ${username}`);
    expect(r.stdout).toContain(`written to ${file}`);
    const json = await cliJson<Record<string, unknown>>(['token', 'create', 'acme', '--scope', 'containers:read', '--creds-file', join(dir, 'ci2.creds')]);
    expect(json).not.toHaveProperty('secret');
    expect(json.credsFile).toBe(join(dir, 'ci2.creds'));
    expect(JSON.stringify(json)).not.toMatch(SECRET);
  });

  it('warns when the device config it writes names no registry', async () => {
    const without = await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'no-registry')]);
    expect(without.status).toBe(0);
    expect(without.stderr).toMatch(/^tollgate: warning: .*device\.json names no registry: the credential helper answers "credentials not found" for every registry .*--registry <host:port>.*\(device_config_no_registry\)\n$/);
    const json = await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'no-registry-json'), '--json']);
    expect(JSON.parse(json.stderr)).toMatchObject({ warning: { code: 'device_config_no_registry' } });
    const withRegistry = await cli(['device', 'issue-test', 'acme', '--out', join(dir, 'with-registry'), '--registry', '127.0.0.1:5000']);
    expect(withRegistry.stderr).toBe('');
  });
});

describe('tollgate audit: export', () => {
  interface Record_ {
    id: number;
    at: string;
    action: string;
    target: string | null;
  }

  it('exports every matching record as NDJSON or CSV, within --since and --until', async () => {
    const all = await cliJson<Record_[]>(['audit', 'acme', '--limit', '1000']);
    expect(all.length).toBeGreaterThan(5);
    const ndjson = await cli(['audit', 'acme', '--format', 'ndjson']);
    expect(ndjson.status, ndjson.stderr).toBe(0);
    const lines = ndjson.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record_);
    expect(lines.map((r) => r.id)).toEqual(all.map((r) => r.id));

    const csv = await cli(['audit', 'acme', '--format', 'csv', '--limit', '3']);
    const rows = csv.stdout.split('\r\n').filter((l) => l !== '');
    expect(rows[0]).toBe('id,at,actor,action,outcome,target,reason,source,details');
    expect(rows).toHaveLength(4);
    expect(rows[1]!.startsWith(`${all[0]!.id},${all[0]!.at},`)).toBe(true);

    const middle = all[Math.floor(all.length / 2)]!;
    const since = await cliJson<Record_[]>(['audit', 'acme', '--since', middle.at, '--limit', '1000']);
    expect(since.every((r) => Date.parse(r.at) >= Date.parse(middle.at))).toBe(true);
    expect(since.map((r) => r.id)).toContain(middle.id);
    const until = await cliJson<Record_[]>(['audit', 'acme', '--until', middle.at, '--limit', '1000']);
    expect(until.every((r) => Date.parse(r.at) < Date.parse(middle.at))).toBe(true);
    expect(since.length + until.length).toBe(all.length);
    expect(await cliJson<Record_[]>(['audit', 'acme', '--since', '1h', '--limit', '1000'])).toHaveLength(all.length);
    expect(await cliJson<Record_[]>(['audit', 'acme', '--until', '2000-01-01T00:00:00Z'])).toEqual([]);

    expectError(await cli(['audit', 'acme', '--since', 'yesterday']), 2, 'since_invalid');
    expectError(await cli(['audit', 'acme', '--format', 'xml']), 2, 'format_invalid');
    expectError(await cli(['audit', 'acme', '--follow', '--until', '1h']), 2, 'usage_option_conflict');
    const followJson = await cli(['audit', 'acme', '--follow', '--json']);
    expect(followJson.status).toBe(2);
    expect(JSON.parse(followJson.stderr)).toMatchObject({ error: { code: 'usage_option_conflict' } });
  }, 120_000);

  it('--follow prints new records as they are written, until interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'audit-all', '--format', 'ndjson', '--follow', '--since', '1m'], { cwd: dir, env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const seen = async (what: string) => {
      const deadline = Date.now() + 15_000;
      while (!out.includes(what) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      return out.includes(what);
    };
    expect((await cli(['factory', 'create', 'followed'])).status).toBe(0);
    expect(await seen('"action":"factory.created"')).toBe(true);
    const before = out.split('\n').filter((l) => l !== '').length;
    // Earlier tests created CAs within the last minute too: wait for this CA's record, by its id.
    const created = await cli(['ca', 'create', 'followed', '--json']);
    expect(created.status).toBe(0);
    const caId = (JSON.parse(created.stdout) as { id: string }).id;
    expect(await seen(`"target":"${caId}"`)).toBe(true);
    expect(out.split('\n').filter((l) => l !== '').length).toBeGreaterThan(before);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const ids = out.trimEnd().split('\n').map((l) => (JSON.parse(l) as Record_).id);
    expect(new Set(ids).size).toBe(ids.length);
  }, 120_000);
});

describe('tollgate --url (remote mode, with a token)', () => {
  let admin: RunningAdmin;
  let deps: AuthorityDeps & { store: SqlStore };
  let secret: string;
  let url: string;
  let gateway: string;

  beforeAll(async () => {
    // The admin API hands out the development gateway CA that `init` generated above.
    const config = loadConfig({ file: configFile, env: { TOLLGATE_ADMIN_LISTEN_PORT: '0', TOLLGATE_DEVELOPMENT: 'true' } });
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
    // The audit export through the admin API: --since and --until travel as RFC 3339 times.
    const recent = await cli(['audit', 'acme', '--since', '10m', '--format', 'ndjson', '--target', issued.device.uuid], remote());
    expect(recent.status, recent.stderr).toBe(0);
    expect(recent.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { action: string }).action)).toContain('device.enrolled');
    expect((await cliJson<unknown[]>(['audit', 'acme', '--until', '2000-01-01T00:00:00Z'], remote()))).toEqual([]);
  }, 120_000);

  it('reports refusals with exit 1 and usage mistakes with exit 2', async () => {
    expectError(await cli(['device', 'list', 'demo'], remote()), 1, 'factory_forbidden');
    expectError(await cli(['token', 'create', 'acme', '--scope', 'containers:write'], remote()), 1, 'scope_not_grantable');
    // A factory's token is refused the operator's commands by the server.
    expectError(await cli(['factory', 'create', 'newco'], remote()), 1, 'operator_only');
    expectError(await cli(['keys', 'list'], remote()), 1, 'operator_only');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: url }), 2, 'token_missing');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: url, TOLLGATE_TOKEN: 'tga_wrong' }), 1, 'token_invalid');
    expectError(await cli(['device', 'show', 'acme', '..'], remote()), 2, 'device_uuid_invalid');
    expectError(await cli(['device', 'show', 'acme', '../../whoami'], remote()), 2, 'device_uuid_invalid');
    expectError(await cli(['device', 'list', 'acme'], { TOLLGATE_URL: 'ftp://x', TOLLGATE_TOKEN: secret }), 2, 'url_invalid');
  }, 120_000);

  // Sixteen CLI processes in a row: give them the time a busy machine needs.
  it('runs the operator\'s commands remotely with an operator token, and refuses it once revoked', { timeout: 120_000 }, async () => {
    // A factory's token is no operator token.
    expectError(await cli(['audit-all'], remote()), 1, 'operator_only');
    expectError(await cli(['operator', 'token', 'create'], remote()), 1, 'operator_only');
    const created = await cliJson<{ id: string; secret: string }>(['operator', 'token', 'create', '--description', 'ops laptop', '--days', '7']);
    expect(created.secret).toMatch(/^tgo_[A-Za-z0-9_-]{49}$/);
    const op = { TOLLGATE_URL: url, TOLLGATE_TOKEN: created.secret };
    expect(await cliJson<{ kind: string; tokenId: string }>(['whoami'], op)).toEqual({ kind: 'operator', tokenId: created.id });
    const factory = await cliJson<{ name: string }>(['factory', 'create', 'remoteco'], op);
    expect(factory.name).toBe('remoteco');
    expect((await cliJson<{ name: string }[]>(['factory', 'list'], op)).map((f) => f.name)).toContain('remoteco');
    const key = await cliJson<{ kid: string; status: string }>(['keys', 'add'], op);
    expect(key.status).toBe('trusted');
    expect((await cliJson<{ kid: string }[]>(['keys', 'list'], op)).map((k) => k.kid)).toContain(key.kid);
    const out = join(dir, 'remote-registry');
    const rc = await cliJson<{ kids: string[]; paths: { rootBundle: string } }>(['registry-config', '--out', out], op);
    expect(rc.kids).toContain(key.kid);
    expect(readFileSync(rc.paths.rootBundle, 'utf8')).toContain('BEGIN CERTIFICATE');
    await cliJson(['keys', 'retire', key.kid], op);
    const audit = await cliJson<{ actor: string; action: string }[]>(['audit-all', '--action', 'factory.created', '--limit', '1000'], op);
    expect(audit.find((r) => r.actor === `operator:${created.id}`)).toBeTruthy();
    // The doctor compares a registry file with what the running system publishes.
    writeFileSync(join(dir, 'registry-remote.yml'), readFileSync(rc.paths.rootBundle.replace('root-bundle.pem', 'auth-2.8.yml'), 'utf8'));
    const doctor = await cli(['doctor', '--registry-config', join(dir, 'registry-remote.yml'), '--json'], op);
    const findings = JSON.parse(doctor.stdout) as { id: string; severity: string }[];
    expect(findings.filter((f) => f.id.startsWith('registry_') || f.id === 'rootcertbundle' || f.id === 'realm_mismatch')).toEqual([]);
    expect(findings.some((f) => f.severity === 'ok')).toBe(true);
    expect((await cliJson<{ id: string }[]>(['operator', 'token', 'list'], op)).map((t) => t.id)).toContain(created.id);
    await cliJson(['operator', 'token', 'revoke', created.id]);
    expectError(await cli(['factory', 'list'], op), 1, 'token_revoked');
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
