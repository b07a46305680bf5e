import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { CLI, startTopology, type Topology } from '../support/topology.js';

/**
 * Static users and the ACL through the real registry, with skopeo: the documented example of an
 * admin with full access, a read-only user, and users limited to their own prefix.
 */
const tools = realBinaries(['docker-registry', 'skopeo']);

const PASSWORDS = { admin: 'admin-pass-1', reader: 'reader-pass-2', alice: 'alice-pass-3' };

/** `tollgate user hash`, the way an operator makes a hash: the password on standard input. */
function hash(password: string, algorithm: 'argon2id' | 'bcrypt'): string {
  const r = spawnSync(process.execPath, [CLI, 'user', 'hash', '--algorithm', algorithm], { input: `${password}\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tollgate user hash failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe.skipIf(!tools.available)('static users and ACL rules against a real registry', () => {
  let t: Topology;
  let skopeo: Skopeo;
  let image: OciImage;

  beforeAll(async () => {
    t = await startTopology({
      authsvc: {
        users: {
          admin: { password: hash(PASSWORDS.admin, 'argon2id') },
          reader: { password: hash(PASSWORDS.reader, 'bcrypt') },
          alice: { password: hash(PASSWORDS.alice, 'argon2id') },
        },
        acl: [
          { comment: 'admins: everything, catalog included', match: { origin: 'user', account: 'admin' }, actions: ['*'] },
          { comment: 'read-only', match: { origin: 'user', account: 'reader', type: 'repository' }, actions: ['pull'] },
          { comment: 'everyone else: their own prefix, any depth', match: { origin: 'user', name: '${account}/**' }, actions: ['pull', 'push'] },
        ],
      },
    });
    skopeo = skopeoFor(t.registryHost, t.dir);
    image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from a user\n');
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('lets the admin push anywhere and read the catalog', async () => {
    const pushed = await skopeo.push(image, 'acme/app', 'admin', PASSWORDS.admin);
    expect(pushed.status, pushed.stderr).toBe(0);
    const token = await fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=registry:catalog:*`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORDS.admin}`).toString('base64')}` },
    }).then((r) => r.json() as Promise<{ token: string }>);
    const catalog = await fetch(`http://${t.registryHost}/v2/_catalog`, { headers: { authorization: `Bearer ${token.token}` } });
    expect(catalog.status).toBe(200);
    expect(await catalog.json()).toEqual({ repositories: ['acme/app'] });
  });

  it('lets the read-only user pull and refuses its push', async () => {
    const pulled = await skopeo.pull('acme/app', 'reader', PASSWORDS.reader);
    expect(pulled.status, pulled.stderr).toBe(0);
    const pushed = await skopeo.push(image, 'acme/app', 'reader', PASSWORDS.reader, 'v2');
    expect(pushed.status).not.toBe(0);
    expect(pushed.stderr).toMatch(/denied|unauthorized|authentication required/i);
  });

  it('limits a user to <their name>/...', async () => {
    const own = await skopeo.push(image, 'alice/tools/cli', 'alice', PASSWORDS.alice);
    expect(own.status, own.stderr).toBe(0);
    expect((await skopeo.pull('alice/tools/cli', 'alice', PASSWORDS.alice)).status).toBe(0);
    const foreign = await skopeo.pull('acme/app', 'alice', PASSWORDS.alice);
    expect(foreign.status).not.toBe(0);
    expect(foreign.stderr).toMatch(/denied|unauthorized|authentication required/i);
    expect((await skopeo.push(image, 'admin/tools', 'alice', PASSWORDS.alice)).status).not.toBe(0);
  });

  it('refuses a wrong password and an unknown user, and the registry serves them nothing', async () => {
    for (const [user, password] of [['alice', PASSWORDS.reader], ['reader', 'reader-pass-'], ['mallory', PASSWORDS.alice]] as const) {
      const r = await skopeo.pull('alice/tools/cli', user, password);
      expect(r.status, `${user} should be refused`).not.toBe(0);
      expect(r.stderr).toMatch(/401|unauthorized|authentication required/i);
    }
    // The realm answers the refusals itself, with the same reason for both.
    const res = await fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry`, {
      headers: { authorization: `Basic ${Buffer.from('mallory:whatever').toString('base64')}` },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { reason: 'password_invalid' } }] });
  });

  it('records issuances and refusals under the user, never the password', () => {
    const audit = t.cliJson<{ actor: string; action: string; reason: string | null }[]>(['audit-all', '--limit', '1000']);
    const actors = new Set(audit.map((a) => a.actor));
    expect(actors).toContain('user:admin');
    expect(actors).toContain('user:mallory');
    expect(audit.some((a) => a.actor === 'user:alice' && a.action === 'realm.refused' && a.reason === 'password_invalid')).toBe(true);
    const everything = JSON.stringify(audit);
    for (const password of Object.values(PASSWORDS)) expect(everything).not.toContain(password);
  });

  it('shows the configuration without the hashes', () => {
    const r = t.cli(['config', 'check']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('(argon2 hash)');
    expect(r.stdout).toContain('(bcrypt hash)');
    expect(r.stdout).not.toMatch(/\$argon2id\$|\$2b\$/);
  });
});

describe('tollgate config check with accounts', () => {
  it('masks a webhook password and stops on a broken ACL pattern, naming the rule', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-config-'));
    try {
      const file = join(dir, 'tollgate.yml');
      const hooks = { authorization: { url: 'https://site:hunter2@hooks.example.test/authz' } };
      writeFileSync(file, stringifyYaml({ authsvc: { hooks } }));
      const ok = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { encoding: 'utf8' });
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('https://site:***@hooks.example.test/authz');
      expect(ok.stdout).not.toContain('hunter2');
      writeFileSync(file, stringifyYaml({ authsvc: { acl: [{ match: {}, actions: ['pull'] }, { match: { name: '/(/' }, actions: ['pull'] }] } }));
      const bad = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { encoding: 'utf8' });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/authsvc\.acl\[1\]\.match\.name: not a valid regular expression/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tollgate user hash', () => {
  it('reads the password from standard input only, and refuses what bcrypt would truncate', () => {
    const ok = spawnSync(process.execPath, [CLI, 'user', 'hash', '--algorithm', 'bcrypt', '--json'], { input: 'pw\n', encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ algorithm: 'bcrypt', hash: expect.stringMatching(/^\$2b\$10\$/) });
    const long = spawnSync(process.execPath, [CLI, 'user', 'hash'], { input: 'x'.repeat(73), encoding: 'utf8' });
    expect(long.status).toBe(2);
    expect(long.stderr).toMatch(/longer than 72 bytes/);
    const empty = spawnSync(process.execPath, [CLI, 'user', 'hash'], { input: '', encoding: 'utf8' });
    expect(empty.status).toBe(2);
    const bad = spawnSync(process.execPath, [CLI, 'user', 'hash', '--algorithm', 'md5'], { input: 'pw', encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/argon2id or bcrypt/);
  });
});
