import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { buildOciLayout, type OciImage } from '../support/oci.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc-provider.js';
import { skopeoFor, type Skopeo } from '../support/skopeo.js';
import { CLI, startTopology, type Topology } from '../support/topology.js';

/**
 * Single sign-on through the real registry: a real OpenID provider (oidc-provider), the real
 * `tollgate login` CLI driven through its loopback redirect by a cookie-jar client standing in for
 * the browser, the real authsvc verifying the ID token, skopeo as the registry client.
 */
const tools = realBinaries(['docker-registry', 'skopeo']);

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!tools.available)('OIDC single sign-on against a real registry', () => {
  let t: Topology;
  let provider: OidcTestProvider;
  let stranger: OidcTestProvider;
  let skopeo: Skopeo;
  let image: OciImage;
  /** The environment of a developer's machine: no Tollgate settings but the configuration file. */
  let devEnv: (xdg: string, withConfig: boolean) => NodeJS.ProcessEnv;

  // Asynchronous: the provider runs in this process and must keep answering while the CLI waits on it.
  const tollgate = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ status: code ?? -1, stdout, stderr });
      });
    });

  /** `tollgate login` as a developer runs it, with the cookie-jar client as the browser that opens the printed URL. */
  async function login(account: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<Run & { delivered: { status: number; body: string } | undefined }> {
    const child = spawn(process.execPath, [CLI, 'login', '--timeout', '60', ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no authorization URL printed: ${stderr}`)), 30_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /^\s+(https?:\/\/\S+)$/m.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('exit', () => reject(new Error(`tollgate login exited early: ${stderr}`)));
    });
    const { delivered } = await provider.completeLogin(url, account, { deliver: true });
    const status = await new Promise<number>((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.on('exit', (code) => resolve(code ?? -1));
    });
    return { status, stdout, stderr, delivered };
  }

  /** The realm's own answer to Basic credentials, with its refusal reason. */
  async function realm(username: string, password: string, scope = 'repository:factory-a/app:pull'): Promise<{ status: number; reason?: string; token?: string }> {
    const r = await fetch(`http://127.0.0.1:${t.authsvcPort}/token?service=tollgate-registry&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
    });
    const body = (await r.json()) as { token?: string; errors?: { detail?: { reason?: string } }[] };
    return { status: r.status, ...(body.errors?.[0]?.detail?.reason ? { reason: body.errors[0].detail.reason } : {}), ...(body.token ? { token: body.token } : {}) };
  }

  beforeAll(async () => {
    provider = await startOidcProvider({
      accounts: {
        alice: { email: 'alice@example.com', groups: ['factory-a'] },
        bob: { email: 'bob@example.com', groups: ['contractors'] },
      },
    });
    stranger = await startOidcProvider({ accounts: { alice: { email: 'alice@example.com', groups: ['factory-a'] } } });
    t = await startTopology({
      authsvc: {
        oidc: { issuer: provider.issuer, audience: [provider.clientId], clientId: provider.clientId, clockToleranceSeconds: 0 },
        acl: [{ comment: 'people pull what their groups name', match: { origin: 'oidc', type: 'repository', name: '${labels:groups}/**' }, actions: ['pull'] }],
      },
    });
    skopeo = skopeoFor(t.registryHost, t.dir);
    image = buildOciLayout(join(t.dir, 'image'), 'latest', 'hello from factory-a\n');
    expect(t.cli(['factory', 'create', 'factory-a']).status).toBe(0);
    const ci = t.cliJson<{ username: string; secret: string }>(['token', 'create', 'factory-a', '--scope', 'containers:write', '--description', 'CI']);
    const pushed = await skopeo.push(image, 'factory-a/app', ci.username, ci.secret);
    expect(pushed.status, pushed.stderr).toBe(0);

    const { TOLLGATE_URL: _u, TOLLGATE_TOKEN: _t, TOLLGATE_CONFIG: _c, XDG_CONFIG_HOME: _x, ...inherited } = process.env;
    devEnv = (xdg, withConfig) => ({ ...inherited, HOME: join(t.dir, 'home'), XDG_CONFIG_HOME: xdg, ...(withConfig ? { TOLLGATE_CONFIG: t.configFile } : {}) });
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
    await Promise.all([provider?.stop(), stranger?.stop()]);
  });

  it('logs in with tollgate login and pulls with skopeo using tollgate login token', async () => {
    const xdg = join(t.dir, 'alice-config');
    const env = devEnv(xdg, true); // issuer and client id come from authsvc.oidc of the configuration
    const done = await login('alice', env);
    expect(done.status, done.stderr).toBe(0);
    expect(done.delivered?.status).toBe(200);
    expect(done.stderr).toMatch(/Open this URL in a browser/);
    expect(done.stdout).toContain('logged in as alice@example.com');

    const file = join(xdg, 'tollgate', 'login.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, 'tollgate')).mode & 0o777).toBe(0o700);
    const session = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(session).toMatchObject({ issuer: provider.issuer, clientId: provider.clientId, account: 'alice@example.com' });
    expect(typeof session.refreshToken).toBe('string');
    expect(Date.parse(String(session.expiresAt))).toBeGreaterThan(Date.now());

    const token = await tollgate(['login', 'token'], env);
    expect(token.status, token.stderr).toBe(0);
    expect(token.stdout.trim()).toBe(session.idToken);
    const idToken = token.stdout.trim();

    const shown = await tollgate(['login', 'show'], env);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain('alice@example.com');
    expect(shown.stdout).toContain(provider.issuer);
    expect(shown.stdout + shown.stderr).not.toContain(idToken.split('.')[2]!);
    expect(shown.stdout + shown.stderr).not.toContain(String(session.refreshToken));

    const inspected = await skopeo.run(['inspect', '--tls-verify=false', '--creds', `alice@example.com:${idToken}`, `docker://${t.registryHost}/factory-a/app:latest`]);
    expect(inspected.status, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ Digest: image.manifestDigest });
    const pulled = await skopeo.pull('factory-a/app', 'alice@example.com', idToken);
    expect(pulled.status, pulled.stderr).toBe(0);
  });

  it('refuses a push by an OIDC user whom the ACL allows only to pull', async () => {
    const { idToken } = await provider.issueTokens('alice');
    const pushed = await skopeo.push(image, 'factory-a/app', 'alice@example.com', idToken, 'from-alice');
    expect(pushed.status).not.toBe(0);
    expect(pushed.stderr).toMatch(/denied|unauthorized|authentication required/i);
    // Authenticated, and granted the pull only.
    const r = await realm('alice@example.com', idToken, 'repository:factory-a/app:pull,push');
    expect(r.status).toBe(200);
    const claims = JSON.parse(Buffer.from(r.token!.split('.')[1]!, 'base64url').toString()) as { sub: string; access: { name: string; actions: string[] }[] };
    expect(claims.sub).toBe('alice@example.com');
    expect(claims.access).toEqual([{ type: 'repository', name: 'factory-a/app', actions: ['pull'] }]);
  });

  it('refuses a user whose groups the ACL does not cover (logged in without any configuration)', async () => {
    const xdg = join(t.dir, 'bob-config');
    const env = devEnv(xdg, false);
    const done = await login('bob', env, ['--issuer', provider.issuer, '--client-id', provider.clientId]);
    expect(done.status, done.stderr).toBe(0);
    const token = await tollgate(['login', 'token'], env);
    expect(token.status, token.stderr).toBe(0);
    const pulled = await skopeo.pull('factory-a/app', 'bob@example.com', token.stdout.trim());
    expect(pulled.status).not.toBe(0);
    expect(pulled.stderr).toMatch(/denied|unauthorized|authentication required/i);
    // Bob is who he says (200), but nothing of factory-a is his.
    const r = await realm('bob@example.com', token.stdout.trim());
    expect(r.status).toBe(200);
    const claims = JSON.parse(Buffer.from(r.token!.split('.')[1]!, 'base64url').toString()) as { access: unknown[] };
    expect(claims.access).toEqual([]);
  });

  it('refuses an expired ID token, and tollgate login token renews it with the refresh token', async () => {
    const xdg = join(t.dir, 'expiring-config');
    const env = devEnv(xdg, true);
    provider.setIdTokenTtl(2);
    let done;
    try {
      done = await login('alice', env);
    } finally {
      provider.setIdTokenTtl(600);
    }
    expect(done.status, done.stderr).toBe(0);
    const stale = (JSON.parse(readFileSync(join(xdg, 'tollgate', 'login.json'), 'utf8')) as { idToken: string }).idToken;
    await new Promise((r) => setTimeout(r, 3_000));

    const refused = await skopeo.pull('factory-a/app', 'alice@example.com', stale);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/denied|unauthorized|authentication required/i);
    expect(await realm('alice@example.com', stale)).toMatchObject({ status: 401, reason: 'oidc_token_expired' });

    const renewed = await tollgate(['login', 'token'], env);
    expect(renewed.status, renewed.stderr).toBe(0);
    const fresh = renewed.stdout.trim();
    expect(fresh).not.toBe(stale);
    expect((JSON.parse(readFileSync(join(xdg, 'tollgate', 'login.json'), 'utf8')) as { idToken: string }).idToken).toBe(fresh);
    const pulled = await skopeo.pull('factory-a/app', 'alice@example.com', fresh);
    expect(pulled.status, pulled.stderr).toBe(0);
  });

  it('refuses a token from an untrusted issuer and a username that is not the token\'s account', async () => {
    const { idToken: foreign } = await stranger.issueTokens('alice');
    const pulled = await skopeo.pull('factory-a/app', 'alice@example.com', foreign);
    expect(pulled.status).not.toBe(0);
    expect(pulled.stderr).toMatch(/denied|unauthorized|authentication required/i);
    expect(await realm('alice@example.com', foreign)).toMatchObject({ status: 401, reason: 'oidc_issuer_untrusted' });

    const { idToken } = await provider.issueTokens('bob');
    expect(await realm('alice@example.com', idToken)).toMatchObject({ status: 401, reason: 'username_mismatch' });
    // The authsvc log never holds the token.
    expect(readFileSync(t.logs.authsvc, 'utf8')).not.toContain(idToken.split('.')[2]!);
  });

  it('abandons a login whose callback carries another state, and refuses a plain-http provider off loopback', async () => {
    const env = devEnv(join(t.dir, 'forged-config'), true);
    const child = spawn(process.execPath, [CLI, 'login', '--timeout', '30'], { env });
    let stderr = '';
    const url = await new Promise<URL>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /^\s+(https?:\/\/\S+)$/m.exec(stderr);
        if (m) resolve(new URL(m[1]!));
      });
      child.on('exit', () => reject(new Error(stderr)));
    });
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    // A page elsewhere sends the browser to the listener with a code of its choosing.
    const forged = new URL(url.searchParams.get('redirect_uri')!);
    forged.searchParams.set('code', 'attacker-code');
    forged.searchParams.set('state', 'not-the-state');
    const answer = await fetch(forged);
    expect(answer.status).toBe(400);
    expect(await exited).toBe(1);
    expect(stderr).toContain('(login_state_mismatch)');
    expect(existsSync(join(t.dir, 'forged-config', 'tollgate', 'login.json'))).toBe(false);

    const insecure = await tollgate(['login', '--issuer', 'http://idp.example.com', '--client-id', 'x'], devEnv(join(t.dir, 'x'), false));
    expect(insecure.status).toBe(2);
    expect(insecure.stderr).toContain('(issuer_insecure)');
  });

  it('fails clearly without a session, and tollgate logout ends it', async () => {
    const xdg = join(t.dir, 'nobody-config');
    mkdirSync(xdg, { recursive: true });
    const none = await tollgate(['login', 'token'], devEnv(xdg, false));
    expect(none.status).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no login session .* run tollgate login \(login_required\)/);

    const leaving = join(t.dir, 'leaving-config');
    const env = devEnv(leaving, true);
    expect((await login('alice', env)).status).toBe(0);
    const file = join(leaving, 'tollgate', 'login.json');
    const session = JSON.parse(readFileSync(file, 'utf8')) as { refreshToken: string };
    const out = await tollgate(['logout'], env);
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/logged out .*refresh token revoked/);
    expect(existsSync(file)).toBe(false);
    expect((await tollgate(['login', 'token'], env)).status).toBe(1);
    // The provider no longer renews with the revoked refresh token.
    const r = await fetch(`${provider.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session.refreshToken, client_id: provider.clientId }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toBe('invalid_grant');
  });
});
