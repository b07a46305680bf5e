import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeviceConfig, plainDeviceConfig } from '../../helper/config.js';
import { deviceConfigSchema } from '../../helper/config-schema.js';
import { DeviceConfigError } from '../../helper/errors.js';
import { runHelper } from '../../helper/run.js';
import { createTestPki, DEVICE_UUID, writeDeviceConfig, type TestPki } from './helper-fixture.js';

let dir: string;
let pki: TestPki;
const GW = 'https://gw.example.com:8443';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-helper-config-'));
  pki = await createTestPki(path.join(dir, 'pki'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The message loadDeviceConfig refuses `config` with. */
async function refusal(configPath: string): Promise<string> {
  try {
    await loadDeviceConfig(configPath);
  } catch (e) {
    expect(e).toBeInstanceOf(DeviceConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

function rawConfig(text: string): string {
  const file = path.join(pki.dir, `raw-${Math.random().toString(16).slice(2)}.json`);
  fs.writeFileSync(file, text);
  return file;
}

describe('loadDeviceConfig', () => {
  it('resolves relative paths against the config directory and reads the identity', async () => {
    const file = writeDeviceConfig(pki.dir, `${GW}/`, { registries: ['127.0.0.1:5000', 'https://HUB.example.com/v2/'] });
    const config = await loadDeviceConfig(file);
    expect(config.path).toBe(file);
    expect(config.gateway).toBe(GW);
    expect(config.registries).toEqual(['127.0.0.1:5000', 'hub.example.com']);
    expect(config.certificate.path).toBe(pki.files.certificate);
    expect(config.privateKey.path).toBe(pki.files.privateKey);
    expect(config.caBundle.path).toBe(pki.files.caBundle);
    expect(config.certificate.commonName).toBe(DEVICE_UUID);
    expect(config.certificate.fingerprint256).toMatch(/^[0-9a-f]{64}$/);
    expect(config.certificate.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it('accepts absolute paths', async () => {
    const file = writeDeviceConfig(dir, GW, { certificate: pki.files.certificate, privateKey: pki.files.privateKey, caBundle: pki.files.caBundle });
    expect((await loadDeviceConfig(file)).certificate.path).toBe(pki.files.certificate);
  });

  it('names a missing config file and the variable that moves it', async () => {
    const missing = path.join(dir, 'nope', 'device.json');
    expect(await refusal(missing)).toBe(`device config ${missing}: file not found (set TOLLGATE_DEVICE_CONFIG to use another file)`);
  });

  it('says when the file is not JSON', async () => {
    const file = rawConfig('{"gateway": "https://x",');
    expect(await refusal(file)).toMatch(new RegExp(`^device config ${file}: not valid JSON \\(`));
  });

  it('says when the JSON is not an object', async () => {
    expect(await refusal(rawConfig('[]'))).toMatch(/: must be a JSON object$/);
  });

  it('names each missing key', async () => {
    const file = rawConfig(JSON.stringify({ gateway: GW, privateKey: 'client.key', registries: ['a'] }));
    const message = await refusal(file);
    expect(message).toContain(`device config ${file}: `);
    expect(message).toContain('certificate: is required');
    expect(message).toContain('caBundle: is required');
  });

  it.each([
    [{ gateway: 'http://gw:8443' }, 'gateway: must be an https:// URL'],
    [{ gateway: 'gw:8443' }, 'gateway: must be an https:// URL'],
    [{ gateway: 'not a url' }, 'gateway: "not a url" is not a URL'],
    [{ gateway: 42 }, 'gateway: must be a string'],
    [{ certificate: '' }, 'certificate: must not be empty'],
    [{ registries: [] }, 'registries: must list at least one registry host[:port]'],
    [{ registries: 'hub.example.com' }, 'registries: must be an array'],
    [{ registries: ['ok.example.com', 'bad host'] }, 'registries[1]: "bad host" is not a registry host[:port]'],
    [{ registires: ['x'] }, 'unknown key "registires"'],
  ])('refuses %j precisely', async (override, expected) => {
    const file = writeDeviceConfig(pki.dir, GW, override);
    expect(await refusal(file)).toContain(expected);
  });

  it('names a missing certificate file', async () => {
    const file = writeDeviceConfig(pki.dir, GW, { certificate: 'missing.pem' });
    expect(await refusal(file)).toBe(`device config ${file}: certificate: file not found (${path.join(pki.dir, 'missing.pem')})`);
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const file = writeDeviceConfig(pki.dir, GW, { privateKey: 'other.key' });
    expect(await refusal(file)).toContain(`privateKey: ${pki.files.otherKey} is not the private key of the certificate in ${pki.files.certificate}`);
  });

  it('refuses a file that holds no certificate, and a private key that is not one', async () => {
    expect(await refusal(writeDeviceConfig(pki.dir, GW, { caBundle: 'client.key' }))).toContain('caBundle: no "-----BEGIN CERTIFICATE-----" block');
    expect(await refusal(writeDeviceConfig(pki.dir, GW, { privateKey: 'client.pem' }))).toContain('privateKey: ');
  });

  it('refuses an encrypted private key with advice', async () => {
    const crypto = await import('node:crypto');
    const pem = crypto
      .createPrivateKey(fs.readFileSync(pki.files.privateKey))
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string;
    fs.writeFileSync(path.join(pki.dir, 'encrypted.key'), pem);
    expect(await refusal(writeDeviceConfig(pki.dir, GW, { privateKey: 'encrypted.key' }))).toContain('is encrypted');
  });

  it('caps the config and PEM files at 64 KiB', async () => {
    const big = rawConfig(JSON.stringify({ gateway: GW, pad: 'x'.repeat(64 * 1024) }));
    expect(await refusal(big)).toContain('at most 65536 bytes (64 KiB)');
    fs.writeFileSync(path.join(pki.dir, 'huge.pem'), `${fs.readFileSync(pki.files.caBundle, 'utf8')}\n${'#'.repeat(70 * 1024)}\n`);
    expect(await refusal(writeDeviceConfig(pki.dir, GW, { caBundle: 'huge.pem' }))).toMatch(/caBundle: file is \d+ bytes or more; at most 65536 bytes/);
  });

  it('refuses a directory where a file belongs', async () => {
    expect(await refusal(writeDeviceConfig(pki.dir, GW, { certificate: '.' }))).toContain('certificate: not a regular file');
  });
});

describe('config errors through the helper', () => {
  it('are one line on stdout with exit 1', async () => {
    const missing = path.join(dir, 'absent.json');
    const r = await runHelper(['get'], '127.0.0.1:5000', { TOLLGATE_DEVICE_CONFIG: missing, TOLLGATE_CACHE_DIR: path.join(dir, 'cache') });
    expect(r).toEqual({ stdout: `tollgate: device config ${missing}: file not found (set TOLLGATE_DEVICE_CONFIG to use another file)\n`, exitCode: 1 });
  });

  it('a broken identity does not affect registries Tollgate does not serve', async () => {
    const file = writeDeviceConfig(pki.dir, GW, { certificate: 'missing.pem' });
    const env = { TOLLGATE_DEVICE_CONFIG: file, TOLLGATE_CACHE_DIR: path.join(dir, 'cache') };
    expect(await runHelper(['get'], 'docker.io', env)).toEqual({ stdout: 'credentials not found in native keychain\n', exitCode: 1 });
    const r = await runHelper(['get'], '127.0.0.1:5000', env);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe(`tollgate: device config ${file}: certificate: file not found (${path.join(pki.dir, 'missing.pem')})\n`);
  });

  it('uses /etc/tollgate/device.json, then the sota.toml layout, without TOLLGATE_DEVICE_CONFIG', async () => {
    const r = await runHelper(['list'], '', {});
    // The test machine has neither; the message must name both default places.
    if (!fs.existsSync('/etc/tollgate/device.json') && !fs.existsSync('/var/sota/sota.toml')) {
      expect(r.stdout).toBe(
        'tollgate: no device configuration: neither /etc/tollgate/device.json nor a sota.toml (/usr/lib/sota/conf.d, /var/sota/sota.toml, /etc/sota/conf.d); set TOLLGATE_DEVICE_CONFIG or TOLLGATE_SOTA_PATHS\n',
      );
    }
  });
});

describe('the plain-config fast path', () => {
  // Values near the edges of what the schema accepts, valid and not.
  const text = fc.oneof(
    fc.constantFrom('client.pem', ' client.pem ', '', '   ', 'a', '\t'),
    fc.string({ maxLength: 12 }),
  );
  const gateway = fc.oneof(
    fc.constantFrom(GW, `${GW}/`, ' https://gw:8443 ', 'http://gw:8443', 'gw:8443', 'https://u:p@gw', 'https://gw/?q=1', 'https://gw/#f', 'not a url', ''),
    fc.webUrl(),
  );
  const registry = fc.oneof(fc.constantFrom('127.0.0.1:5000', 'hub.example.com', 'https://HUB.example.com/v2/', 'bad host', '', ' x ', '[::1]:5000', 'a:99999'), fc.string({ maxLength: 10 }));
  const value = (v: fc.Arbitrary<unknown>) => fc.oneof({ weight: 5, arbitrary: v }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.string(), { maxLength: 2 })) });
  const config = fc.record(
    {
      gateway: value(gateway),
      certificate: value(text),
      privateKey: value(text),
      caBundle: value(text),
      registries: value(fc.array(value(registry), { maxLength: 3 })),
      extra: fc.string(),
    },
    { requiredKeys: [] },
  );

  it('takes nothing the schema refuses, and takes it exactly as the schema does', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 8, arbitrary: config }, { weight: 1, arbitrary: fc.jsonValue() }), (json) => {
        const plain = plainDeviceConfig(json);
        if (plain === undefined) return;
        const parsed = deviceConfigSchema.safeParse(json);
        expect(parsed.success).toBe(true);
        expect(plain).toEqual(parsed.data);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the configs devices have', () => {
    for (const json of [
      { gateway: GW, certificate: 'device.pem', privateKey: 'device.key', caBundle: 'gateway-ca.pem', registries: ['127.0.0.1:5000'] },
      { gateway: `${GW}/`, certificate: '/var/sota/client.pem', privateKey: '/var/sota/pkey.pem', caBundle: '/var/sota/root.crt', registries: ['hub.example.com', 'https://HUB.example.com/v2/'] },
    ]) {
      expect(plainDeviceConfig(json)).toEqual(deviceConfigSchema.parse(json));
    }
  });
});
