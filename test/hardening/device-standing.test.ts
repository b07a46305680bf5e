import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { HELPER, startTopology, type Topology } from '../support/topology.js';

/**
 * A device whose standing changes while its credential helper holds a token, with the real helper
 * process, gateway, realm, registry and skopeo: disabled and enabled again, it pulls again within a
 * minute without anyone erasing anything; disabled or revoked, its helper and the realm say so.
 * The helper's clock is moved forward with faketime instead of waiting.
 */
const tools = realBinaries(['docker-registry', 'skopeo', 'faketime']);

interface Audit {
  actor: string;
  action: string;
  reason: string | null;
}

describe.skipIf(!tools.available)('a device whose standing changes while its helper holds a token', () => {
  let t: Topology;
  let skopeo: Skopeo['run'];
  let bin: string;

  /** A device as set up in the field, with the helper on PATH running `seconds` ahead of the real clock. */
  function device(dir: string) {
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ credHelpers: { [t.registryHost]: 'tollgate' } }));
    mkdirSync(join(dir, 'cache'), { recursive: true });
    return (seconds = 0): NodeJS.ProcessEnv => ({
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      TOLLGATE_DEVICE_CONFIG: join(dir, 'device.json'),
      TOLLGATE_CACHE_DIR: join(dir, 'cache'),
      REGISTRY_AUTH_FILE: authfile,
      HELPER_CLOCK: `+${seconds}s`,
    });
  }

  function issue(name: string) {
    const dir = join(t.dir, name);
    const issued = t.cliJson<{ device: { uuid: string } }>(['device', 'issue-test', 'fleet', '--out', dir, '--hours', '2', '--registry', t.registryHost]);
    return { uuid: issued.device.uuid, env: device(dir) };
  }

  const pull = (env: NodeJS.ProcessEnv) =>
    skopeo(['copy', '--authfile', env.REGISTRY_AUTH_FILE!, '--src-tls-verify=false', `docker://${t.registryHost}/fleet/app:latest`, `oci:${join(t.dir, 'pulled', randomUUID())}:x`], env);

  const helperGet = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(join(bin, 'docker-credential-tollgate'), ['get'], { input: t.registryHost, env: { ...process.env, ...env }, encoding: 'utf8' });
    return { status: r.status ?? -1, stdout: r.stdout };
  };

  /** One realm request on a connection of its own. */
  const realm = (username: string, secret: string) =>
    new Promise<{ status: number; reason: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: t.authsvcPort,
          path: '/token?service=tollgate-registry&scope=repository:fleet/app:pull',
          agent: false,
          headers: { authorization: `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}` },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            const body = JSON.parse(text) as { errors?: { detail?: { reason?: string } }[] };
            resolve({ status: res.statusCode ?? 0, reason: body.errors?.[0]?.detail?.reason });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });

  /** The factory's own audit trail (`tollgate audit fleet`): the refusal must be found there. */
  const lastRefusal = () => t.cliJson<Audit[]>(['audit', 'fleet', '--limit', '1000']).filter((a) => a.action === 'realm.refused').at(-1);

  beforeAll(async () => {
    t = await startTopology();
    skopeo = skopeoFor(t.registryHost, t.dir).run;
    expect(t.cli(['factory', 'create', 'fleet']).status).toBe(0);
    expect(t.cli(['ca', 'create', 'fleet']).status).toBe(0);
    const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', 'fleet', '--scope', 'containers:write']);
    const image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello, fleet\n');
    const pushed = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${ci.username}:${ci.secret}`, `oci:${image.dir}:latest`, `docker://${t.registryHost}/fleet/app:latest`]);
    expect(pushed.status, pushed.stderr).toBe(0);
    // The helper as a device's PATH holds it, its clock moved by HELPER_CLOCK.
    bin = join(t.dir, 'later-bin');
    mkdirSync(bin);
    mkdirSync(join(t.dir, 'pulled'));
    writeFileSync(join(bin, 'docker-credential-tollgate'), `#!/bin/sh\nexec faketime -f "$HELPER_CLOCK" "${process.execPath}" "${HELPER}" "$@"\n`);
    chmodSync(join(bin, 'docker-credential-tollgate'), 0o755);
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('pulls again within a minute of being enabled again, without an erase', async () => {
    const d = issue('re-enabled');
    const first = await pull(d.env(0));
    expect(first.status, first.stderr).toBe(0);
    const held = JSON.parse(helperGet(d.env(0)).stdout) as { Username: string; Secret: string };
    expect(t.cli(['device', 'disable', 'fleet', d.uuid, '--reason', 'maintenance']).status).toBe(0);
    expect(t.cli(['device', 'enable', 'fleet', d.uuid]).status).toBe(0);
    // The token it held died with the disable: the realm says why.
    expect(await realm(held.Username, held.Secret)).toEqual({ status: 401, reason: 'token_revoked' });
    expect(lastRefusal()).toMatchObject({ actor: `device:${d.uuid}`, reason: 'token_revoked' });
    // Less than a minute later the helper has a new token, and the pull works.
    const later = await pull(d.env(45));
    expect(later.status, later.stderr).toBe(0);
  });

  it.each([
    ['disable', 'device_disabled', 'the device is disabled'],
    ['revoke', 'device_revoked', 'the device is revoked'],
  ])('after a %s, tells the realm and the helper why, not "invalid username/password"', async (verb, reason, message) => {
    const d = issue(`${verb}d`);
    const held = JSON.parse(helperGet(d.env(0)).stdout) as { Username: string; Secret: string };
    expect((await realm(held.Username, held.Secret)).status).toBe(200);
    expect(t.cli(['device', verb, 'fleet', d.uuid, '--reason', 'lost']).status).toBe(0);

    expect(await realm(held.Username, held.Secret)).toEqual({ status: 401, reason });
    expect(lastRefusal()).toMatchObject({ actor: `device:${d.uuid}`, reason });
    const get = helperGet(d.env(45));
    expect(get.status).toBe(1);
    expect(get.stdout).toBe(`tollgate: the gateway refused this device: ${message} (${reason})\n`);
  });
});
