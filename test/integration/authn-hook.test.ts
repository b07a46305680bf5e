import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { startTopology, type Topology } from '../support/topology.js';

/**
 * A site's own authentication and authorization hooks, through the real registry with skopeo: the
 * realm runs the hook executables (or calls the webhook) for credentials that are not Tollgate's,
 * the ACL grants, and the authorization hook narrows. A hook that hangs or crashes issues nothing.
 */
const tools = realBinaries(['docker-registry', 'skopeo']);

const PASSWORDS = { alice: 'alice-hook-pass-1', crasher: 'crasher-hook-pass-2', hangman: 'hangman-hook-pass-3' };
const HOOK_TIMEOUT_MS = 1000;

interface Audit {
  actor: string;
  action: string;
  reason: string | null;
}

function executable(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  // Hooks get a minimal PATH, so the interpreter is named by its absolute path.
  writeFileSync(path, `#!${process.execPath}\n${body}`);
  chmodSync(path, 0o755);
  return path;
}

const realm = (t: Topology, user: string, password: string, scope = 'repository:factory-a/app:pull') =>
  fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
  });

/** Pushes the test image into `repos` with a factory CI token, as CI does. */
async function pushWithCiToken(t: Topology, skopeo: Skopeo, image: OciImage, repos: string[]): Promise<void> {
  expect(t.cli(['factory', 'create', 'factory-a']).status).toBe(0);
  const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', 'factory-a', '--scope', 'containers:write', '--description', 'CI']);
  for (const repo of repos) {
    const pushed = await skopeo.push(image, repo, ci.username, ci.secret);
    expect(pushed.status, pushed.stderr).toBe(0);
  }
}

/**
 * A hanging hook fails the pull promptly, and the realm answers 503 hook_timeout within the
 * time-out, issuing nothing.
 */
async function expectHangFailsClosed(t: Topology, skopeo: Skopeo): Promise<void> {
  const started = Date.now();
  const r = await skopeo.pull('factory-a/app', 'hangman', PASSWORDS.hangman);
  expect(r.status).not.toBe(0);
  expect(Date.now() - started).toBeLessThan(15_000);
  const direct = Date.now();
  const res = await realm(t, 'hangman', PASSWORDS.hangman);
  expect(Date.now() - direct).toBeLessThan(HOOK_TIMEOUT_MS + 2000);
  expect(res.status).toBe(503);
  const body = (await res.json()) as { token?: string; errors?: { detail?: { reason?: string } }[] };
  expect(body.token).toBeUndefined();
  expect(body.errors?.[0]?.detail?.reason).toBe('hook_timeout');
}

describe.skipIf(!tools.available)('extension hooks (executables) against a real registry', () => {
  let t: Topology;
  let skopeo: Skopeo;
  let hooksDir: string;
  let hangPidFile: string;

  beforeAll(async () => {
    hooksDir = mkdtempSync(join(tmpdir(), 'tollgate-hook-scripts-'));
    hangPidFile = join(hooksDir, 'hang.pid');
    const authn = executable(
      hooksDir,
      'authn.cjs',
      `const fs = require('fs');
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const q = JSON.parse(input);
  if (q.username === 'hangman') {
    fs.writeFileSync(${JSON.stringify(hangPidFile)}, String(process.pid));
    setInterval(() => {}, 1000);
    return;
  }
  if (q.username === 'crasher') {
    // A careless hook that echoes its input: the realm's log must still not show the password.
    process.stderr.write('cannot handle ' + input);
    process.exit(3);
  }
  if (q.username !== 'alice') process.exit(2);
  if (q.password !== ${JSON.stringify(PASSWORDS.alice)} || q.service !== 'tollgate-registry') process.exit(1);
  process.stdout.write(JSON.stringify({ labels: { team: ['site'] } }), () => process.exit(0));
});
`,
    );
    const authz = executable(
      hooksDir,
      'authz.cjs',
      `let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const q = JSON.parse(input);
  if (q.name.endsWith('/private') || q.labels.team?.[0] !== 'site') process.exit(1);
  process.stdout.write(JSON.stringify(q.actions), () => process.exit(0));
});
`,
    );
    t = await startTopology({
      authsvc: {
        hooks: {
          authentication: { command: [authn], timeoutMs: HOOK_TIMEOUT_MS },
          authorization: { command: [authz], timeoutMs: HOOK_TIMEOUT_MS },
        },
        acl: [{ comment: 'accounts the site vouches for read factory-a', match: { origin: 'hook', name: 'factory-a/*' }, actions: ['pull'] }],
      },
    });
    skopeo = skopeoFor(t.registryHost, t.dir);
    const image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from a hook\n');
    await pushWithCiToken(t, skopeo, image, ['factory-a/app', 'factory-a/private']);
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    if (hooksDir) rmSync(hooksDir, { recursive: true, force: true });
  });

  it('lets a user the hook accepts pull what the ACL grants', async () => {
    const r = await skopeo.pull('factory-a/app', 'alice', PASSWORDS.alice);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses a wrong password (hook exit 1) and a user the hook has no opinion on (exit 2)', async () => {
    const wrong = await skopeo.pull('factory-a/app', 'alice', 'not-the-password');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/401|unauthorized|authentication required/i);
    const res = await realm(t, 'alice', 'not-the-password');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { reason: 'hook_denied' } }] });
    const stranger = await realm(t, 'stranger', 'whatever');
    expect(stranger.status).toBe(401);
    expect(await stranger.json()).toMatchObject({ errors: [{ detail: { reason: 'credentials_unknown' } }] });
  });

  it('fails a pull promptly when the hook hangs: 503, nothing issued, the hook killed', async () => {
    await expectHangFailsClosed(t, skopeo);
    const pid = Number(readFileSync(hangPidFile, 'utf8'));
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('refuses a user whose hook crashes, with 503 and no token', async () => {
    const r = await skopeo.pull('factory-a/app', 'crasher', PASSWORDS.crasher);
    expect(r.status).not.toBe(0);
    const res = await realm(t, 'crasher', PASSWORDS.crasher);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { reason: 'hook_failed' } }] });
  });

  it('refuses a repository the ACL allows when the authorization hook denies it', async () => {
    const r = await skopeo.pull('factory-a/private', 'alice', PASSWORDS.alice);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/denied|unauthorized|authentication required/i);
    // The realm still issues a token, but it grants nothing on that repository.
    const res = await realm(t, 'alice', PASSWORDS.alice, 'repository:factory-a/private:pull');
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string; access: unknown[] };
    expect(claims.sub).toBe('alice');
    expect(claims.access).toEqual([]);
  });

  it('audits issuances and refusals under hook:<user>, and no log or audit record holds a password', () => {
    const audit = t.cliJson<Audit[]>(['audit-all', '--limit', '1000']);
    expect(audit.some((a) => a.actor === 'hook:alice' && a.action === 'realm.token_issued')).toBe(true);
    expect(audit.some((a) => a.actor === 'hook:alice' && a.reason === 'hook_denied')).toBe(true);
    expect(audit.some((a) => a.action === 'realm.refused' && a.reason === 'hook_timeout')).toBe(true);
    expect(audit.some((a) => a.action === 'realm.refused' && a.reason === 'hook_failed')).toBe(true);
    expect(audit.some((a) => a.action === 'realm.token_issued' && /hangman|crasher/.test(a.actor))).toBe(false);
    const log = readFileSync(t.logs.authsvc, 'utf8');
    // The crashing hook's stderr reached the log, with the password taken out.
    expect(log).toMatch(/cannot handle/);
    expect(log).toMatch(/"outcome":"timeout"/);
    const everything = log + JSON.stringify(audit);
    for (const password of Object.values(PASSWORDS)) expect(everything).not.toContain(password);
  });
});

describe.skipIf(!tools.available)('authentication webhook against a real registry', () => {
  let t: Topology;
  let skopeo: Skopeo;
  let server: Server;
  const waiting = new Set<ServerResponse>();
  const seen: unknown[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const q = JSON.parse(body) as { username: string; password: string };
        seen.push({ ...q, password: '(seen)', contentType: req.headers['content-type'] });
        if (q.username === 'hangman') {
          waiting.add(res);
          return;
        }
        if (q.username !== 'alice') return res.writeHead(404).end();
        if (q.password !== PASSWORDS.alice) return res.writeHead(403).end();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ labels: { team: ['site'] } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`;
    t = await startTopology({
      authsvc: {
        hooks: { authentication: { url, timeoutMs: HOOK_TIMEOUT_MS } },
        acl: [{ match: { origin: 'hook', labels: { team: 'site' }, name: 'factory-a/*' }, actions: ['pull'] }],
      },
    });
    skopeo = skopeoFor(t.registryHost, t.dir);
    await pushWithCiToken(t, skopeo, buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from a webhook\n'), ['factory-a/app']);
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    for (const res of waiting) res.destroy();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  it('lets a user the webhook accepts pull', async () => {
    const r = await skopeo.pull('factory-a/app', 'alice', PASSWORDS.alice);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(seen).toContainEqual({ username: 'alice', password: '(seen)', service: 'tollgate-registry', source: '127.0.0.1', contentType: 'application/json' });
    const wrong = await realm(t, 'alice', 'nope');
    expect(wrong.status).toBe(401);
  });

  it('fails promptly with 503 when the webhook hangs', async () => {
    await expectHangFailsClosed(t, skopeo);
    const audit = t.cliJson<Audit[]>(['audit-all', '--limit', '1000']);
    expect(audit.some((a) => a.action === 'realm.token_issued' && a.actor.includes('hangman'))).toBe(false);
  });
});
