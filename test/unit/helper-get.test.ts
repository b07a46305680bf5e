import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadDeviceConfig } from '../../helper/config.js';
import { GatewayError } from '../../helper/errors.js';
import { fetchHubCreds } from '../../helper/gateway-client.js';
import { runHelper, type HelperOptions } from '../../helper/run.js';
import {
  closedPort,
  createTestPki,
  DEVICE_UUID,
  issueToken,
  refuse,
  startFakeGateway,
  writeDeviceConfig,
  type FakeGateway,
  type TestPki,
} from './helper-fixture.js';

let dir: string;
let pki: TestPki;
let gateway: FakeGateway;
let configFile: string;
let cacheDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-helper-get-'));
  pki = await createTestPki(path.join(dir, 'pki'));
  gateway = await startFakeGateway(pki);
  configFile = writeDeviceConfig(pki.dir, gateway.url);
});
afterAll(async () => {
  await gateway.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let run = 0;
beforeEach(() => {
  gateway.calls = 0;
  gateway.secrets = [];
  gateway.behaviour = issueToken(300);
  cacheDir = path.join(dir, `cache-${++run}`, 'tollgate');
  env = { TOLLGATE_DEVICE_CONFIG: configFile, TOLLGATE_CACHE_DIR: cacheDir };
});

const get = (serverUrl: string, options?: HelperOptions, e: NodeJS.ProcessEnv = env) => runHelper(['get'], serverUrl, e, options);

function parse(stdout: string): { ServerURL: string; Username: string; Secret: string } {
  expect(stdout.endsWith('\n')).toBe(true);
  return JSON.parse(stdout) as { ServerURL: string; Username: string; Secret: string };
}

function cacheFiles(): string[] {
  return fs.readdirSync(cacheDir).filter((f) => f.endsWith('.json'));
}

describe('get', () => {
  it('prints the gateway credentials for a configured registry', async () => {
    const r = await get('127.0.0.1:5000');
    expect(r.exitCode).toBe(0);
    expect(parse(r.stdout)).toEqual({ ServerURL: '127.0.0.1:5000', Username: DEVICE_UUID, Secret: gateway.secrets[0] });
    expect(gateway.calls).toBe(1);
  });

  it('answers "credentials not found" for any other registry, without asking the gateway', async () => {
    for (const url of ['docker.io', 'https://index.docker.io/v1/', '127.0.0.1:5001', 'hub.example.com:443', '%%%']) {
      expect(await get(url)).toEqual({ stdout: 'credentials not found in native keychain\n', exitCode: 1 });
    }
    expect(gateway.calls).toBe(0);
  });

  it('accepts the URL forms clients send and echoes ServerURL as given', async () => {
    for (const url of ['https://127.0.0.1:5000/v2/', '127.0.0.1:5000', 'https://127.0.0.1:5000', 'HUB.EXAMPLE.COM', 'https://hub.example.com/v2/']) {
      const r = await get(`${url}\n`);
      expect(r.exitCode).toBe(0);
      expect(parse(r.stdout).ServerURL).toBe(url);
    }
    // One device identity, one gateway: every registry shares the cached token.
    expect(gateway.calls).toBe(1);
  });

  it('reuses the cached token', async () => {
    const first = parse((await get('127.0.0.1:5000')).stdout);
    const second = parse((await get('hub.example.com')).stdout);
    expect(second.Secret).toBe(first.Secret);
    expect(gateway.calls).toBe(1);
  });

  it('refetches a token whose lifetime is inside the expiry margin', async () => {
    gateway.behaviour = issueToken(30);
    const first = parse((await get('127.0.0.1:5000')).stdout);
    const second = parse((await get('127.0.0.1:5000')).stdout);
    expect(gateway.calls).toBe(2);
    expect(second.Secret).not.toBe(first.Secret);
  });

  it('reuses a token for 30 s after asking the gateway, then asks again', async () => {
    const t0 = Date.now();
    let now = t0;
    const opts = { now: () => now };
    gateway.behaviour = issueToken(600);
    const first = parse((await get('127.0.0.1:5000', opts)).stdout);
    now = t0 + 29_000;
    expect(parse((await get('127.0.0.1:5000', opts)).stdout).Secret).toBe(first.Secret);
    expect(gateway.calls).toBe(1);
    now = t0 + 31_000;
    expect(parse((await get('127.0.0.1:5000', opts)).stdout).Secret).not.toBe(first.Secret);
    expect(gateway.calls).toBe(2);
    // A clock set back makes the entry look new: it counts as old instead.
    now = t0;
    await get('127.0.0.1:5000', opts);
    expect(gateway.calls).toBe(3);
  });

  it('never reuses a token within 60 s (or 10% of its lifetime) of its expiry', async () => {
    const t0 = Date.now();
    let now = t0;
    const opts = { now: () => now };
    gateway.behaviour = issueToken(70);
    await get('127.0.0.1:5000', opts);
    now = t0 + 9_000;
    await get('127.0.0.1:5000', opts);
    expect(gateway.calls).toBe(1);
    now = t0 + 11_000;
    await get('127.0.0.1:5000', opts);
    expect(gateway.calls).toBe(2);
  });

  it('drops its token when the gateway refuses the device, says why, and gets a new one once the device is back', async () => {
    const t0 = Date.now();
    let now = t0;
    const opts = { now: () => now };
    const held = parse((await get('127.0.0.1:5000', opts)).stdout);
    gateway.behaviour = refuse(403, 'device_disabled', 'the device is disabled');
    now = t0 + 31_000;
    const refused = await get('127.0.0.1:5000', opts);
    expect(refused).toEqual({ stdout: 'tollgate: the gateway refused this device: the device is disabled (device_disabled)\n', exitCode: 1 });
    // The dead token is gone from the cache: nothing hands it out again, even within the half minute.
    gateway.behaviour = issueToken(600);
    now = t0 + 32_000;
    const back = parse((await get('127.0.0.1:5000', opts)).stdout);
    expect(back.Secret).not.toBe(held.Secret);
    expect(gateway.calls).toBe(3);
  });

  it('hands out the token it holds while the gateway is down, asking again every half minute', async () => {
    const t0 = Date.now();
    let now = t0;
    const opts = { now: () => now };
    gateway.behaviour = issueToken(3600);
    const held = parse((await get('127.0.0.1:5000', opts)).stdout);
    gateway.behaviour = refuse(503, 'store_busy', 'the store is busy; retry shortly');
    for (const [at, calls] of [
      [31_000, 2],
      [45_000, 2],
      [62_000, 3],
    ] as const) {
      now = t0 + at;
      expect(parse((await get('127.0.0.1:5000', opts)).stdout).Secret).toBe(held.Secret);
      expect(gateway.calls).toBe(calls);
    }
  });

  it('keeps the cache private: directory 0700, file 0600', async () => {
    await get('127.0.0.1:5000');
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);
    const files = cacheFiles();
    expect(files).toHaveLength(1);
    expect(fs.statSync(path.join(cacheDir, files[0] as string)).mode & 0o777).toBe(0o600);
    // No temp or lock file left behind.
    expect(fs.readdirSync(cacheDir)).toEqual(files);
  });

  it('tightens an existing cache directory that is too open', async () => {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
    fs.chmodSync(cacheDir, 0o755);
    await get('127.0.0.1:5000');
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);
  });

  it('ignores and replaces a corrupted cache file', async () => {
    await get('127.0.0.1:5000');
    const file = path.join(cacheDir, cacheFiles()[0] as string);
    for (const garbage of ['{"version":1,"secr', '\u0000\u0001binary', '[]', JSON.stringify({ version: 1, secret: 'x' })]) {
      fs.writeFileSync(file, garbage);
      const r = await get('127.0.0.1:5000');
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(fs.readFileSync(file, 'utf8')).secret).toBe(parse(r.stdout).Secret);
    }
    expect(gateway.calls).toBe(5);
  });

  it('ignores an unreadable cache file', async () => {
    if (process.getuid?.() === 0) return; // root reads mode-000 files anyway
    await get('127.0.0.1:5000');
    fs.chmodSync(path.join(cacheDir, cacheFiles()[0] as string), 0o000);
    const r = await get('127.0.0.1:5000');
    expect(r.exitCode).toBe(0);
    expect(gateway.calls).toBe(2);
  });

  it('works without any usable cache directory', async () => {
    fs.mkdirSync(path.dirname(cacheDir), { recursive: true });
    fs.writeFileSync(cacheDir, 'a file where the directory should be');
    const lines: string[] = [];
    const e = { ...env, HOME: '/', TMPDIR: cacheDir, TOLLGATE_HELPER_DEBUG: '1' };
    const r = await get('127.0.0.1:5000', { stderr: (t) => void lines.push(t) }, e);
    expect(r.exitCode).toBe(0);
    expect(lines.join('')).toContain('no usable cache directory');
  });

  it('falls back to a private per-user directory in TMPDIR when HOME is unusable', async () => {
    const tmp = path.join(path.dirname(cacheDir), 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    const { TOLLGATE_CACHE_DIR: _, ...rest } = env;
    await get('127.0.0.1:5000', {}, { ...rest, HOME: '/', TMPDIR: tmp });
    const fallback = path.join(tmp, `tollgate-cache-${process.getuid?.() ?? os.userInfo().username}`);
    expect(fs.statSync(fallback).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(fallback).filter((f) => f.endsWith('.json'))).toHaveLength(1);
  });

  it('uses $XDG_CACHE_HOME/tollgate, else ~/.cache/tollgate', async () => {
    const base = path.dirname(cacheDir);
    const { TOLLGATE_CACHE_DIR: _, ...rest } = env;
    await get('127.0.0.1:5000', {}, { ...rest, XDG_CACHE_HOME: path.join(base, 'xdg'), HOME: path.join(base, 'home') });
    expect(fs.readdirSync(path.join(base, 'xdg', 'tollgate')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    await get('127.0.0.1:5000', {}, { ...rest, HOME: path.join(base, 'home') });
    expect(fs.statSync(path.join(base, 'home', '.cache', 'tollgate')).mode & 0o777).toBe(0o700);
    expect(gateway.calls).toBe(2);
  });

  it('breaks a stale lock left by a helper that died, or by an older helper as a file', async () => {
    fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    await get('127.0.0.1:5000');
    const file = path.join(cacheDir, cacheFiles()[0] as string);
    const old = new Date(Date.now() - 60_000);
    for (const leave of [() => fs.mkdirSync(`${file}.lock`), () => fs.writeFileSync(`${file}.lock`, '999999 dead\n')]) {
      fs.rmSync(file);
      leave();
      fs.utimesSync(`${file}.lock`, old, old);
      const started = Date.now();
      const r = await get('127.0.0.1:5000');
      expect(r.exitCode).toBe(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(fs.existsSync(`${file}.lock`)).toBe(false);
    }
  });

  it('waits for the lock holder and takes its token', async () => {
    await get('127.0.0.1:5000');
    const file = path.join(cacheDir, cacheFiles()[0] as string);
    const entry = fs.readFileSync(file, 'utf8');
    fs.rmSync(file);
    fs.mkdirSync(`${file}.lock`);
    // Another helper finishes 300 ms later: writes the cache, drops the lock.
    setTimeout(() => {
      fs.writeFileSync(file, entry, { mode: 0o600 });
      fs.rmSync(`${file}.lock`, { recursive: true });
    }, 300);
    const r = await get('127.0.0.1:5000');
    expect(parse(r.stdout).Secret).toBe(JSON.parse(entry).secret);
    expect(gateway.calls).toBe(1);
  });
});

describe('gateway failures', () => {
  function expectOneLine(r: { stdout: string; exitCode: number }) {
    expect(r.exitCode).toBe(1);
    expect(r.stdout.startsWith('tollgate: ')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stdout).not.toMatch(/\n\s+at /);
  }

  it('gateway down: names the gateway and the reason', async () => {
    const url = `https://127.0.0.1:${await closedPort()}`;
    const r = await get('127.0.0.1:5000', {}, { ...env, TOLLGATE_DEVICE_CONFIG: writeDeviceConfig(pki.dir, url) });
    expectOneLine(r);
    expect(r.stdout).toBe(`tollgate: gateway ${url} unreachable (connection refused)\n`);
  });

  it('device revoked (403): says the gateway refused the device and why', async () => {
    gateway.behaviour = refuse(403, 'device_revoked', 'the device is revoked');
    const r = await get('127.0.0.1:5000');
    expectOneLine(r);
    expect(r.stdout).toBe('tollgate: the gateway refused this device: the device is revoked (device_revoked)\n');
    // A refusal is not cached: the next pull asks again.
    await get('127.0.0.1:5000');
    expect(gateway.calls).toBe(2);
  });

  it('certificate expired (401): says the certificate was not accepted', async () => {
    gateway.behaviour = refuse(401, 'certificate_expired', 'the client certificate has expired');
    const r = await get('127.0.0.1:5000');
    expectOneLine(r);
    expect(r.stdout).toBe("tollgate: the gateway did not accept this device's certificate: the client certificate has expired (certificate_expired)\n");
  });

  it('gateway certificate not issued by the caBundle: says so with the OpenSSL code', async () => {
    const file = writeDeviceConfig(pki.dir, gateway.url, { caBundle: 'other-ca.pem' });
    const r = await get('127.0.0.1:5000', {}, { ...env, TOLLGATE_DEVICE_CONFIG: file });
    expectOneLine(r);
    expect(r.stdout).toMatch(new RegExp(`^tollgate: gateway certificate not trusted by caBundle ${pki.files.otherCa} \\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)\\)\\n$`));
    expect(gateway.calls).toBe(0);
  });

  it('gateway certificate for another name: says so', async () => {
    const misnamed = await startFakeGateway(pki, issueToken(), pki.wrongNameServerCertPem);
    try {
      const file = writeDeviceConfig(pki.dir, misnamed.url);
      const r = await get('127.0.0.1:5000', {}, { ...env, TOLLGATE_DEVICE_CONFIG: file });
      expectOneLine(r);
      expect(r.stdout).toBe('tollgate: gateway certificate is not issued for 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID)\n');
      expect(misnamed.calls).toBe(0);
    } finally {
      await misnamed.close();
    }
  });

  it('rate limited with a short Retry-After: retries once', async () => {
    gateway.behaviour = (call, cn) =>
      call === 1 ? refuse(429, 'rate_limited', 'too many requests', { 'retry-after': '1' })(call, cn) : issueToken()(call, cn);
    const r = await get('127.0.0.1:5000');
    expect(r.exitCode).toBe(0);
    expect(gateway.calls).toBe(2);
  });

  it('rate limited for longer: says when to retry', async () => {
    gateway.behaviour = refuse(429, 'rate_limited', 'too many requests', { 'retry-after': '120' });
    const r = await get('127.0.0.1:5000');
    expectOneLine(r);
    expect(r.stdout).toBe('tollgate: the gateway is rate-limiting this device; retry in 120 s: too many requests (rate_limited)\n');
  });

  it('a server error or a non-gateway answer is described, not dumped', async () => {
    gateway.behaviour = () => ({ status: 500, body: { error: { code: 'internal_error', message: 'internal error' } } });
    expect((await get('127.0.0.1:5000')).stdout).toBe(`tollgate: gateway ${gateway.url} answered HTTP 500: internal error (internal_error)\n`);
    gateway.behaviour = () => ({ status: 200, body: '<html>hello</html>' });
    expect((await get('127.0.0.1:5000')).stdout).toBe(`tollgate: gateway ${gateway.url} answered 200 without Username and Secret\n`);
    const file = writeDeviceConfig(pki.dir, `${gateway.url}/not-here`);
    const r = await get('127.0.0.1:5000', {}, { ...env, TOLLGATE_DEVICE_CONFIG: file });
    expect(r.stdout).toBe(`tollgate: gateway ${gateway.url}/not-here has no /hub-creds/ (HTTP 404, route_not_found); is "gateway" the Tollgate device gateway URL?\n`);
  });

  it('a gateway that does not answer in time: says so', async () => {
    gateway.behaviour = (call, cn) => ({ ...issueToken()(call, cn), delayMs: 1_000 });
    const r = await get('127.0.0.1:5000', { timeoutMs: 300 });
    expectOneLine(r);
    expect(r.stdout).toBe(`tollgate: gateway ${gateway.url} did not answer within 0.3 s\n`);
  });

  it('helpers that waited for a refused call report the refusal instead of asking again', async () => {
    gateway.behaviour = (call, cn) => ({ ...refuse(403, 'device_revoked', 'the device is revoked')(call, cn), delayMs: 300 });
    const results = await Promise.all(Array.from({ length: 10 }, () => get('127.0.0.1:5000')));
    for (const r of results) expect(r).toEqual({ stdout: 'tollgate: the gateway refused this device: the device is revoked (device_revoked)\n', exitCode: 1 });
    expect(gateway.calls).toBe(1);
    // A later pull asks again: the device may have been re-enabled since.
    gateway.behaviour = issueToken();
    expect((await get('127.0.0.1:5000')).exitCode).toBe(0);
    expect(gateway.calls).toBe(2);
    expect(fs.readdirSync(cacheDir).filter((f) => !f.endsWith('.json'))).toEqual([]);
  });

  it('fetchHubCreds throws a GatewayError with the gateway code', async () => {
    gateway.behaviour = refuse(403, 'device_disabled', 'the device is disabled');
    const config = await loadDeviceConfig(configFile);
    const error = await fetchHubCreds(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('device_disabled');
    expect((error as GatewayError).status).toBe(403);
  });
});

describe('debug output', () => {
  it('goes to stderr only when asked, and never holds the secret', async () => {
    const lines: string[] = [];
    const options = { stderr: (t: string) => void lines.push(t) };
    const quiet = await get('127.0.0.1:5000', options);
    expect(lines).toEqual([]);
    const r = await get('127.0.0.1:5000', options, { ...env, TOLLGATE_HELPER_DEBUG: '1' });
    fs.rmSync(cacheDir, { recursive: true });
    await get('127.0.0.1:5000', options, { ...env, TOLLGATE_HELPER_DEBUG: '1' });
    const text = lines.join('');
    expect(text).toContain('docker-credential-tollgate: debug:');
    expect(text).toContain('using cached token');
    expect(text).toContain('gateway answered HTTP 200');
    for (const secret of [...gateway.secrets, parse(quiet.stdout).Secret, parse(r.stdout).Secret]) expect(text).not.toContain(secret);
  });
});

describe('erase and list', () => {
  it('erase drops the cached token; the next get asks the gateway', async () => {
    await get('127.0.0.1:5000');
    expect(cacheFiles()).toHaveLength(1);
    expect(await runHelper(['erase'], 'https://127.0.0.1:5000/v2/', env)).toEqual({ stdout: '', exitCode: 0 });
    expect(cacheFiles()).toHaveLength(0);
    expect(await runHelper(['erase'], '127.0.0.1:5000', env)).toEqual({ stdout: '', exitCode: 0 });
    expect(await runHelper(['erase'], 'docker.io', env)).toEqual({ stdout: '', exitCode: 0 });
    await get('127.0.0.1:5000');
    expect(gateway.calls).toBe(2);
  });

  it('list names every configured registry with the device user name', async () => {
    const expected = { '127.0.0.1:5000': DEVICE_UUID, 'hub.example.com': DEVICE_UUID };
    const before = await runHelper(['list'], '', env);
    expect(before.exitCode).toBe(0);
    expect(JSON.parse(before.stdout)).toEqual(expected);
    expect(gateway.calls).toBe(0);
    await get('127.0.0.1:5000');
    expect(JSON.parse((await runHelper(['list'], '', env)).stdout)).toEqual(expected);
  });

  it('list with an unreadable identity gives empty user names', async () => {
    const file = writeDeviceConfig(pki.dir, gateway.url, { certificate: 'missing.pem', registries: ['127.0.0.1:5000'] });
    const r = await runHelper(['list'], '', { ...env, TOLLGATE_DEVICE_CONFIG: file });
    expect(r).toEqual({ stdout: '{"127.0.0.1:5000":""}\n', exitCode: 0 });
  });
});
