import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceConfigError } from '../../helper/errors.js';
import { deviceSettings } from '../../helper/settings.js';
import { hubCredsUrlFrom, readSotaFiles, readSotaSettings, sotaValue } from '../../helper/sota.js';
import { isTollgateError } from '../../shared/errors.js';
import { checkOverrides, renderSotaToml } from '../../shared/sota-toml.js';

/** The sota.toml layout of a Foundries device, as the device side reads it and registration writes it. */

let root: string;

function write(file: string, text: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tollgate-sota-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function layout(name: string, files: Record<string, string>): string[] {
  const dir = join(root, name);
  for (const [path, text] of Object.entries(files)) write(join(dir, path), text);
  return [join(dir, 'usr/lib/sota/conf.d'), join(dir, 'var/sota/sota.toml'), join(dir, 'etc/sota/conf.d')];
}

const base = (dir: string) => `[tls]
server = "https://gw.example.com:8443"
ca_source = "file"
pkey_source = "file"
cert_source = "file"

[uptane]
repo_server = "https://gw.example.com:8443/repo"

[import]
tls_cacert_path = "${dir}/root.crt"
tls_pkey_path = "${dir}/pkey.pem"
tls_clientcert_path = "${dir}/client.pem"

[tollgate]
registries = "hub.example.com, 127.0.0.1:5000"
`;

describe('reading the sota.toml layout', () => {
  it('orders files in reverse alphabetical order of their base names; the first non-empty value wins', async () => {
    const sources = layout('order', {
      'usr/lib/sota/conf.d/10-defaults.toml': '[storage]\npath = "/usr-default"\n[pacman]\ntags = "from-usr"\n',
      'var/sota/sota.toml': '[storage]\npath = "/var/sota"\n[pacman]\ntags = ""\n',
      'etc/sota/conf.d/z-50-fioctl.toml': '[pacman]\ntags = "from-fioctl"\n',
    });
    const files = await readSotaFiles(sources);
    expect(files.map((f) => f.name)).toEqual(['z-50-fioctl.toml', 'sota.toml', '10-defaults.toml']);
    expect(sotaValue(files, 'pacman.tags')).toBe('from-fioctl');
    // sota.toml outranks 10-defaults.toml, and its non-empty path wins.
    expect(sotaValue(files, 'storage.path')).toBe('/var/sota');
    expect(sotaValue(files, 'storage.missing')).toBeUndefined();
  });

  it('lets a later directory replace an earlier file of the same name, and skips an empty value', async () => {
    const sources = layout('replace', {
      'usr/lib/sota/conf.d/50-tollgate.toml': '[tollgate]\nregistries = "old.example.com"\n[storage]\npath = "/from-usr"\n',
      'etc/sota/conf.d/50-tollgate.toml': '[tollgate]\nregistries = "new.example.com"\n',
      'var/sota/sota.toml': '[tollgate]\nregistries = ""\n',
    });
    const files = await readSotaFiles(sources);
    expect(files.map((f) => f.path)).toEqual([join(root, 'replace/var/sota/sota.toml'), join(root, 'replace/etc/sota/conf.d/50-tollgate.toml')]);
    // sota.toml sorts first but its empty value does not count; the /usr/lib file is gone entirely.
    expect(sotaValue(files, 'tollgate.registries')).toBe('new.example.com');
    expect(sotaValue(files, 'storage.path')).toBeUndefined();
  });

  it('turns the layout into helper settings, the hub-creds URL derived as aktualizr-lite derives it', async () => {
    const dir = join(root, 'settings/var/sota');
    const sources = layout('settings', { 'var/sota/sota.toml': base(dir), 'etc/sota/conf.d/z-60-local.toml': '[import]\ntls_pkey_path = "/secure/pkey.pem"\n' });
    const settings = await readSotaSettings(sources);
    expect(settings).toEqual({
      path: join(root, 'settings/etc/sota/conf.d/z-60-local.toml'),
      gateway: 'https://gw.example.com:8443',
      hubCredsUrl: 'https://gw.example.com:8443/hub-creds/',
      registries: ['hub.example.com', '127.0.0.1:5000'],
      certificatePath: `${dir}/client.pem`,
      privateKeyPath: '/secure/pkey.pem',
      caBundlePath: `${dir}/root.crt`,
    });
    expect(hubCredsUrlFrom('https://gw/repo/')).toBe('https://gw/repo/hub-creds/');
    expect(hubCredsUrlFrom('https://ota-lite.foundries.io:8443/repo')).toBe('https://ota-lite.foundries.io:8443/hub-creds/');
  });

  it('is what the helper uses when no Tollgate device config is given', async () => {
    const dir = join(root, 'env/var/sota');
    const sources = layout('env', { 'var/sota/sota.toml': base(dir) });
    const settings = await deviceSettings({ TOLLGATE_SOTA_PATHS: sources.join(':') });
    expect(settings.gateway).toBe('https://gw.example.com:8443');
    // An explicit Tollgate device config still wins.
    await expect(deviceSettings({ TOLLGATE_SOTA_PATHS: sources.join(':'), TOLLGATE_DEVICE_CONFIG: join(root, 'nope.json') })).rejects.toThrow(/device config .*nope\.json: file not found/);
  });

  it('refuses a key in PKCS#11, a missing gateway or registry list, and a file that is not TOML, naming what is wrong', async () => {
    const dir = join(root, 'bad/var/sota');
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'var/sota/sota.toml': `${base(dir)}`.replace('pkey_source = "file"', 'pkey_source = "pkcs11"') }, /tls\.pkey_source is "pkcs11".*files only/],
      [{ 'var/sota/sota.toml': base(dir).replace('server = "https://gw.example.com:8443"', '') }, /tls\.server is not set/],
      [{ 'var/sota/sota.toml': base(dir).replace('server = "https://gw.example.com:8443"', 'server = "http://gw"') }, /tls\.server must be an https:\/\/ URL/],
      [{ 'var/sota/sota.toml': base(dir).replace('registries = "hub.example.com, 127.0.0.1:5000"', '') }, /tollgate\.registries is not set/],
      [{ 'var/sota/sota.toml': base(dir).replace('hub.example.com, 127.0.0.1:5000', 'not a host!') }, /"not a host!" is not a registry/],
      [{ 'var/sota/sota.toml': '[tls\nserver = 1' }, /not valid TOML/],
      [{}, /no sota\.toml file found/],
    ];
    for (const [i, [files, message]] of cases.entries()) {
      const error = await readSotaSettings(layout(`bad-${i}`, files)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeviceConfigError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('the sota.toml of a registration answer', () => {
  const input = {
    gateway: 'https://gw.example.com:8443/',
    sotaConfigDir: '/var/sota',
    hardwareId: 'intel-corei7-64',
    registries: ['hub.example.com'],
    overrides: { pacman: { tags: '"main"', compose_apps: '"app1,app2"' }, storage: { tls_pkey_path: '' }, tls: { pkey_source: '"pkcs11"' } },
  };

  it("has Foundries' sections pointing at this gateway, the overrides merged, and reads back as the helper's settings", async () => {
    const text = renderSotaToml(input);
    const tree = parse(text) as Record<string, Record<string, string>>;
    expect(tree.tls).toEqual({ server: 'https://gw.example.com:8443', ca_source: 'file', pkey_source: 'pkcs11', cert_source: 'file' });
    expect(tree.uptane?.repo_server).toBe('https://gw.example.com:8443/repo');
    expect(tree.import).toEqual({ tls_cacert_path: '/var/sota/root.crt', tls_pkey_path: '/var/sota/pkey.pem', tls_clientcert_path: '/var/sota/client.pem' });
    expect(tree.pacman).toMatchObject({ tags: 'main', compose_apps: 'app1,app2', type: 'ostree+compose_apps' });
    expect(tree.storage).toEqual({ type: 'sqlite', path: '/var/sota/' });
    expect(text).toContain('# tls_pkey_path is not set');
    expect(tree.tollgate).toEqual({ registries: 'hub.example.com' });

    const file = join(root, 'rendered/sota.toml');
    write(file, renderSotaToml({ ...input, overrides: {} }));
    const settings = await readSotaSettings([file]);
    expect(settings).toMatchObject({ gateway: 'https://gw.example.com:8443', hubCredsUrl: 'https://gw.example.com:8443/hub-creds/', privateKeyPath: '/var/sota/pkey.pem' });
  });

  it('escapes what it writes itself, and refuses overrides that are not one TOML value on one line', () => {
    const tricky = renderSotaToml({ ...input, overrides: {}, hardwareId: 'a"b\\c', sotaConfigDir: '/data/"x"' });
    expect((parse(tricky) as Record<string, Record<string, string>>).provision?.primary_ecu_hardware_id).toBe('a"b\\c');
    const refused: Record<string, Record<string, string>>[] = [
      { pacman: { tags: '"main"\n[tls]\nserver = "https://evil"' } },
      { pacman: { tags: 'main' } },
      { 'pac man': { tags: '"x"' } },
      { pacman: { 'tags]': '"x"' } },
      { pacman: { tags: '"a" # ok\r' } },
      { pacman: { tags: '"x" extra = 1' } },
    ];
    for (const overrides of refused) {
      let caught: unknown;
      try {
        checkOverrides(overrides);
      } catch (e) {
        caught = e;
      }
      expect(isTollgateError(caught) && caught.code, JSON.stringify(overrides)).toBe('overrides_invalid');
    }
    expect(() => checkOverrides({ pacman: { tags: '"main"', reset_apps: '""', number: '3', list: '["a", "b"]' }, storage: { tls_pkey_path: '' } })).not.toThrow();
  });
});
