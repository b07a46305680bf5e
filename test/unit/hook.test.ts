import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticationHook, createAuthorizationHook } from '../../authsvc/authn/hook.js';
import { MAX_ANSWER_BYTES } from '../../authsvc/authn/hook-transport.js';
import type { AuthnContext, AuthnOutcome, AuthorizationQuestion } from '../../authsvc/authn/types.js';
import { hooksSchema, type HookTargetConfig } from '../../shared/config-accounts.js';
import { createLogger, type Logger } from '../../shared/log.js';

/**
 * The extension hooks against real executables (shell and node scripts written at test time) and a
 * real local HTTP server: what each exit code, status and answer means, and that time-outs, crashes
 * and floods end with nothing granted and no process left behind.
 */

let dir: string;
const CONTEXT: AuthnContext = { now: Date.now(), source: '192.0.2.9', service: 'tollgate-registry' };
const PASSWORD = 'correct-horse-battery-staple-1234';
const ALICE = { username: 'alice', password: PASSWORD };

/** Writes an executable script; `body` follows a `#!/bin/sh` line unless it brings its own. */
function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body.startsWith('#!') ? body : `#!/bin/sh\n${body}`);
  chmodSync(path, 0o755);
  return path;
}

/** A node script, by absolute interpreter path: hooks get a minimal PATH. */
function nodeScript(name: string, body: string): string {
  return script(name, `#!${process.execPath}\n${body}`);
}

function hookConfig(fields: Partial<HookTargetConfig>): HookTargetConfig {
  // Through the real schema, so defaults and validation are the configuration's.
  const parsed = hooksSchema.parse({ authentication: fields });
  if (!parsed.authentication) throw new Error('no hook');
  return parsed.authentication;
}

function capture(): { log: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger('hook-test', 'debug', stream);
  const text = () => chunks.join('');
  return {
    log,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Whether a process still exists (a zombie still counts: it has not been reaped). */
function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

async function gone(pids: number[], withinMs = 3000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (pids.every((p) => !exists(p))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return pids.every((p) => !exists(p));
}

function readPid(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

async function waitForFile(file: string, withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!existsSync(file) || readFileSync(file, 'utf8').trim() === '') {
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const failReason = (o: AuthnOutcome) => (o.decision === 'fail' || o.decision === 'refuse' ? o.reason : o.decision);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-hooks-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  it('takes an absolute executable path or a URL, not both, and defaults the limits', () => {
    const parsed = hooksSchema.parse({ authentication: { command: ['/usr/local/bin/check', '--site', 'a'] }, authorization: { url: 'http://127.0.0.1:9/authz' } });
    expect(parsed.authentication).toMatchObject({ timeoutMs: 2000, maxConcurrent: 4 });
    expect(hooksSchema.safeParse({ authentication: { command: ['check'] } }).success).toBe(false);
    expect(hooksSchema.safeParse({ authentication: { command: ['./check'] } }).success).toBe(false);
    expect(hooksSchema.safeParse({ authentication: { command: ['/bin/true'], url: 'http://127.0.0.1:9/' } }).success).toBe(false);
    expect(hooksSchema.safeParse({ authentication: {} }).success).toBe(false);
    expect(hooksSchema.safeParse({ authentication: { url: 'ftp://example.test/' } }).success).toBe(false);
    expect(hooksSchema.safeParse({ authentication: { command: ['/bin/true'], maxConcurrent: 0 } }).success).toBe(false);
  });
});

describe('authentication hook, executable', () => {
  it('accepts with labels, sees exactly username, password, service and source, and nothing of Tollgate\'s environment', async () => {
    process.env.TOLLGATE_HOOK_TEST_SECRET = 'do-not-leak';
    try {
      const input = join(dir, 'accept.input');
      const envOut = join(dir, 'accept.env');
      const path = script(
        'accept.sh',
        `cat > '${input}'\nenv > '${envOut}'\necho '{"labels": {"team": ["ops", "web"], "site": ["lyon"]}}'\nexit 0\n`,
      );
      const hook = createAuthenticationHook(hookConfig({ command: [path] }), {});
      const outcome = await hook.authenticate(ALICE, CONTEXT);
      expect(outcome).toEqual({ decision: 'accept', principal: { origin: 'hook', account: 'alice', labels: { team: ['ops', 'web'], site: ['lyon'] } } });
      const raw = readFileSync(input, 'utf8');
      expect(raw.endsWith('\n')).toBe(true);
      expect(raw.trim().split('\n')).toHaveLength(1);
      expect(JSON.parse(raw)).toEqual({ username: 'alice', password: PASSWORD, service: 'tollgate-registry', source: '192.0.2.9' });
      const env = readFileSync(envOut, 'utf8');
      expect(env).not.toContain('TOLLGATE_HOOK_TEST_SECRET');
      expect(env).toMatch(/^PATH=/m);
      await hook.close?.();
    } finally {
      delete process.env.TOLLGATE_HOOK_TEST_SECRET;
    }
  });

  it('passes arguments without a shell: metacharacters reach the hook as plain text', async () => {
    const out = join(dir, 'args.out');
    const path = nodeScript('args.js', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.argv.slice(2)));`);
    const hook = createAuthenticationHook(hookConfig({ command: [path, '--site', '$(touch /tmp/x); `id` | cat'] }), {});
    expect((await hook.authenticate(ALICE, CONTEXT)).decision).toBe('accept');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(['--site', '$(touch /tmp/x); `id` | cat']);
  });

  it('accepts with no labels when an exiting-0 hook says nothing, even if it never reads its input', async () => {
    const hook = createAuthenticationHook(hookConfig({ command: [script('silent.sh', 'exit 0\n')] }), {});
    expect(await hook.authenticate(ALICE, CONTEXT)).toEqual({ decision: 'accept', principal: { origin: 'hook', account: 'alice', labels: {} } });
  });

  it('keeps the username as the account when the hook names another one, and says so in the log', async () => {
    const cap = capture();
    const hook = createAuthenticationHook(hookConfig({ command: [script('override.sh', 'echo \'{"account": "root", "labels": {"team": ["ops"]}}\'\n')] }), { log: cap.log });
    const outcome = await hook.authenticate(ALICE, CONTEXT);
    expect(outcome).toEqual({ decision: 'accept', principal: { origin: 'hook', account: 'alice', labels: { team: ['ops'] } } });
    expect(cap.text()).toMatch(/named another account; it is ignored/);
  });

  it('refuses on exit 1 and passes on exit 2', async () => {
    const deny = createAuthenticationHook(hookConfig({ command: [script('deny.sh', 'cat > /dev/null\nexit 1\n')] }), {});
    expect(await deny.authenticate(ALICE, CONTEXT)).toEqual({
      decision: 'refuse',
      reason: 'hook_denied',
      message: 'the authentication hook refused these credentials',
      account: 'alice',
    });
    const pass = createAuthenticationHook(hookConfig({ command: [script('pass.sh', 'exit 2\n')] }), {});
    expect(await pass.authenticate(ALICE, CONTEXT)).toEqual({ decision: 'pass' });
  });

  it('fails closed on a hang: answers within the time-out and leaves neither the hook nor its children', async () => {
    const pidFile = join(dir, 'hang.pid');
    const childFile = join(dir, 'hang.child');
    const path = script('hang.sh', `sleep 60 &\necho $! > '${childFile}'\necho $$ > '${pidFile}'\nwait\n`);
    const cap = capture();
    const hook = createAuthenticationHook(hookConfig({ command: [path], timeoutMs: 400 }), { log: cap.log });
    const started = Date.now();
    const outcome = await hook.authenticate(ALICE, CONTEXT);
    const elapsed = Date.now() - started;
    expect(outcome).toEqual({ decision: 'fail', reason: 'hook_timeout', message: 'the authentication hook did not answer in time' });
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2000);
    const pid = readPid(pidFile);
    const child = readPid(childFile);
    // The hook itself is reaped by the time the answer is given ...
    expect(exists(pid)).toBe(false);
    // ... and the process it started died with its group.
    expect(await gone([child])).toBe(true);
    expect(cap.lines().some((l) => l.outcome === 'timeout' && l.level === 40)).toBe(true);
  });

  it('fails closed on a crash: an unknown exit code, or a signal', async () => {
    const crash = createAuthenticationHook(hookConfig({ command: [script('crash.sh', 'echo "boom" >&2\nexit 3\n')] }), {});
    expect(failReason(await crash.authenticate(ALICE, CONTEXT))).toBe('hook_failed');
    const killed = createAuthenticationHook(hookConfig({ command: [script('killed.sh', 'kill -9 $$\n')] }), {});
    const outcome = await killed.authenticate(ALICE, CONTEXT);
    expect(outcome.decision).toBe('fail');
    expect(failReason(outcome)).toBe('hook_failed');
    const term = createAuthenticationHook(hookConfig({ command: [nodeScript('term.js', "process.kill(process.pid, 'SIGTERM'); setTimeout(() => process.exit(0), 5000);")] }), {});
    expect(failReason(await term.authenticate(ALICE, CONTEXT))).toBe('hook_failed');
  });

  it('fails closed when an accepting hook says something unreadable', async () => {
    const answers = [
      'not json at all',
      '["alice"]',
      'null',
      '{"labels": ["ops"]}',
      '{"labels": {"bad name": ["x"]}}',
      '{"labels": {"team": "ops"}}',
      '{"labels": {"team": [""]}}',
      '{"labels": {"__proto__": ["x"]}}',
    ];
    for (const [i, answer] of answers.entries()) {
      const path = script(`garbage-${i}.sh`, `cat <<'EOF'\n${answer}\nEOF\n`);
      const outcome = await createAuthenticationHook(hookConfig({ command: [path] }), {}).authenticate(ALICE, CONTEXT);
      expect(outcome, answer).toEqual({ decision: 'fail', reason: 'hook_failed', message: 'the authentication hook gave an answer that could not be read' });
    }
    const notUtf8 = nodeScript('latin1.js', "process.stdout.write(Buffer.from([0x7b, 0x7d, 0xff]));");
    expect(failReason(await createAuthenticationHook(hookConfig({ command: [notUtf8] }), {}).authenticate(ALICE, CONTEXT))).toBe('hook_failed');
  });

  it('stops a hook that floods stdout as soon as it passes the cap, long before the time-out', async () => {
    const pidFile = join(dir, 'flood.pid');
    const path = script('flood.sh', `echo $$ > '${pidFile}'\nexec yes '{"labels": {}}'\n`);
    const cap = capture();
    const hook = createAuthenticationHook(hookConfig({ command: [path], timeoutMs: 10_000 }), { log: cap.log });
    const started = Date.now();
    const outcome = await hook.authenticate(ALICE, CONTEXT);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(failReason(outcome)).toBe('hook_failed');
    expect(exists(readPid(pidFile))).toBe(false);
    expect(cap.lines().some((l) => l.outcome === 'answer_too_large')).toBe(true);
  });

  it('fails closed on a one-shot answer larger than the cap, even when the hook exits 0', async () => {
    const big = JSON.stringify({ labels: { team: Array.from({ length: 40 }, () => 'x'.repeat(255)) }, pad: 'y'.repeat(MAX_ANSWER_BYTES) });
    const path = nodeScript('big.js', `process.stdout.write(${JSON.stringify(big)}, () => process.exit(0));`);
    expect(failReason(await createAuthenticationHook(hookConfig({ command: [path] }), {}).authenticate(ALICE, CONTEXT))).toBe('hook_failed');
  });

  it('fails closed when the executable cannot be run', async () => {
    const notExec = join(dir, 'not-exec.sh');
    writeFileSync(notExec, '#!/bin/sh\nexit 0\n');
    chmodSync(notExec, 0o644);
    const cap = capture();
    const a = await createAuthenticationHook(hookConfig({ command: [notExec] }), { log: cap.log }).authenticate(ALICE, CONTEXT);
    expect(failReason(a)).toBe('hook_failed');
    expect(cap.lines().some((l) => l.outcome === 'unreachable' && l.error === 'EACCES')).toBe(true);
    const b = await createAuthenticationHook(hookConfig({ command: [join(dir, 'missing')] }), {}).authenticate(ALICE, CONTEXT);
    expect(failReason(b)).toBe('hook_failed');
    const badInterpreter = script('bad-interp.sh', '#!/nonexistent/interpreter\n');
    expect(failReason(await createAuthenticationHook(hookConfig({ command: [badInterpreter] }), {}).authenticate(ALICE, CONTEXT))).toBe('hook_failed');
  });

  it('logs the hook\'s stderr, cut short and without the password, and never its input', async () => {
    const path = script('noisy.sh', `input=$(cat)\necho "got $input" >&2\nhead -c 20000 /dev/zero | tr '\\0' 'e' >&2\necho "again ${PASSWORD}" >&2\nexit 3\n`);
    const cap = capture();
    const outcome = await createAuthenticationHook(hookConfig({ command: [path] }), { log: cap.log }).authenticate(ALICE, CONTEXT);
    expect(failReason(outcome)).toBe('hook_failed');
    const text = cap.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(PASSWORD.slice(0, 8));
    const line = cap.lines().find((l) => l.outcome === 'exit_code');
    expect(line?.exitCode).toBe(3);
    expect(String(line?.stderr)).toContain('[redacted]');
    expect(String(line?.stderr).length).toBeLessThanOrEqual(1100);
  });

  it('does not leave a password split across the stderr cap in the log', async () => {
    // The password starts a few bytes before the kept part of stderr ends.
    const path = nodeScript('split.js', `process.stderr.write('e'.repeat(8 * 1024 - 5) + ${JSON.stringify(PASSWORD)} + '\\n', () => process.exit(3));`);
    const cap = capture();
    await createAuthenticationHook(hookConfig({ command: [path] }), { log: cap.log }).authenticate(ALICE, CONTEXT);
    expect(cap.text()).not.toContain(PASSWORD.slice(0, 5));
  });

  it('runs at most maxConcurrent hooks at once; the rest wait their turn', async () => {
    const running = join(dir, 'running');
    mkdirSync(running);
    const counts = join(dir, 'counts');
    const path = script('slow.sh', `touch '${running}'/$$\nls '${running}' | wc -l >> '${counts}'\nsleep 0.3\nrm '${running}'/$$\nexit 0\n`);
    const hook = createAuthenticationHook(hookConfig({ command: [path], maxConcurrent: 2, timeoutMs: 10_000 }), {});
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => hook.authenticate(ALICE, CONTEXT)));
    expect(outcomes.map((o) => o.decision)).toEqual(Array(6).fill('accept'));
    const seen = readFileSync(counts, 'utf8').trim().split('\n').map(Number);
    expect(seen).toHaveLength(6);
    expect(Math.max(...seen)).toBeLessThanOrEqual(2);
  });

  it('turns a flood away without forking for it: one process, the rest answered "busy"', async () => {
    const pids = join(dir, 'flood-pids');
    mkdirSync(pids);
    const path = script('hold.sh', `touch '${pids}'/$$\nexec sleep 30\n`);
    const hook = createAuthenticationHook(hookConfig({ command: [path], maxConcurrent: 1, timeoutMs: 500 }), {});
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 40 }, () => hook.authenticate(ALICE, CONTEXT)));
    expect(Date.now() - started).toBeLessThan(3000);
    const reasons = outcomes.map(failReason);
    expect(reasons.filter((r) => r === 'hook_timeout')).toHaveLength(1);
    expect(reasons.filter((r) => r === 'hook_busy')).toHaveLength(39);
    expect(readdirSync(pids)).toHaveLength(1);
    expect(await gone(readdirSync(pids).map(Number))).toBe(true);
  });

  it('close() kills a running hook and fails its request', async () => {
    const pidFile = join(dir, 'closing.pid');
    const hook = createAuthenticationHook(hookConfig({ command: [script('closing.sh', `echo $$ > '${pidFile}'\nexec sleep 30\n`)], timeoutMs: 20_000 }), {});
    const pending = hook.authenticate(ALICE, CONTEXT);
    await waitForFile(pidFile);
    await hook.close?.();
    expect((await pending).decision).toBe('fail');
    expect(exists(readPid(pidFile))).toBe(false);
    expect((await hook.authenticate(ALICE, CONTEXT)).decision).toBe('fail');
  });
});

// ---- webhooks ---------------------------------------------------------------------------------

interface Received {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

describe('authentication and authorization webhooks', () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  const pending = new Set<ServerResponse>();

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
    '/accept': (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"labels": {"team": ["ops"]}}'),
    '/accept-empty': (_q, res) => res.writeHead(200).end(),
    '/accept-html': (_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>OK</html>'),
    '/deny': (_q, res) => res.writeHead(403).end(),
    '/unauthorized': (_q, res) => res.writeHead(401).end(),
    '/pass': (_q, res) => res.writeHead(404).end(),
    '/no-content': (_q, res) => res.writeHead(204).end(),
    '/error': (_q, res) => res.writeHead(500).end('{"labels": {}}'),
    '/slow': (_q, res) => {
      pending.add(res);
    },
    '/huge': (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"labels": {}, "pad": "${'x'.repeat(2 * MAX_ANSWER_BYTES)}"}`),
    '/huge-chunked': (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"labels": {}, "pad": "');
      for (let i = 0; i < 40; i++) res.write('x'.repeat(4096));
      res.end('"}');
    },
    '/redirect': (_q, res) => res.writeHead(302, { location: '/accept' }).end(),
    '/authz-pull': (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('["pull"]'),
    '/authz-everything': (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('["pull", "push", "delete", "*", 7, null]'),
    '/authz-object': (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"actions": ["pull"]}'),
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        received.push({ method: req.method ?? '', path, contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
        const route = routes[path];
        if (route) route(req, res, body);
        else res.writeHead(418).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of pending) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const authn = (path: string, extra: Partial<HookTargetConfig> = {}, log?: Logger) =>
    createAuthenticationHook(hookConfig({ url: `${base}${path}`, ...extra }), log ? { log } : {}).authenticate(ALICE, CONTEXT);

  it('accepts on 200 with labels, POSTing the credentials as JSON', async () => {
    received.length = 0;
    expect(await authn('/accept')).toEqual({ decision: 'accept', principal: { origin: 'hook', account: 'alice', labels: { team: ['ops'] } } });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', path: '/accept', contentType: 'application/json', authorization: undefined });
    expect(JSON.parse(received[0]?.body ?? '')).toEqual({ username: 'alice', password: PASSWORD, service: 'tollgate-registry', source: '192.0.2.9' });
  });

  it('sends credentials written in the URL as HTTP Basic', async () => {
    received.length = 0;
    const url = `${base.replace('http://', 'http://tollgate:s%3Acret@')}/accept`;
    const hook = createAuthenticationHook(hookConfig({ url }), {});
    expect((await hook.authenticate(ALICE, CONTEXT)).decision).toBe('accept');
    expect(received[0]?.authorization).toBe(`Basic ${Buffer.from('tollgate:s:cret').toString('base64')}`);
  });

  it('maps 401/403 to refuse, 404/204 to pass, 500 to fail', async () => {
    expect(failReason(await authn('/deny'))).toBe('hook_denied');
    expect((await authn('/deny')).decision).toBe('refuse');
    expect((await authn('/unauthorized')).decision).toBe('refuse');
    expect(await authn('/pass')).toEqual({ decision: 'pass' });
    expect(await authn('/no-content')).toEqual({ decision: 'pass' });
    const cap = capture();
    const error = await authn('/error', {}, cap.log);
    expect(error).toMatchObject({ decision: 'fail', reason: 'hook_failed' });
    expect(cap.lines().some((l) => l.outcome === 'http_status' && l.status === 500)).toBe(true);
  });

  it('does not accept a 200 whose body is not a JSON object', async () => {
    expect(failReason(await authn('/accept-empty'))).toBe('hook_failed');
    expect(failReason(await authn('/accept-html'))).toBe('hook_failed');
  });

  it('fails closed on a slow webhook, within the time-out', async () => {
    const started = Date.now();
    expect(await authn('/slow', { timeoutMs: 300 })).toEqual({ decision: 'fail', reason: 'hook_timeout', message: 'the authentication hook did not answer in time' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails closed on an oversized body, declared or chunked', async () => {
    expect(failReason(await authn('/huge'))).toBe('hook_failed');
    expect(failReason(await authn('/huge-chunked'))).toBe('hook_failed');
  });

  it('does not follow a redirect', async () => {
    received.length = 0;
    expect(failReason(await authn('/redirect'))).toBe('hook_failed');
    expect(received.map((r) => r.path)).toEqual(['/redirect']);
  });

  it('fails closed when nothing listens, and logs the URL without its credentials or query', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const cap = capture();
    const hook = createAuthenticationHook(hookConfig({ url: `http://user:urlsecret@127.0.0.1:${port}/auth?key=querysecret` }), { log: cap.log });
    expect(failReason(await hook.authenticate(ALICE, CONTEXT))).toBe('hook_failed');
    const line = cap.lines().find((l) => l.outcome === 'unreachable');
    expect(line?.target).toBe(`http://127.0.0.1:${port}/auth`);
    expect(line?.error).toBe('ECONNREFUSED');
    expect(cap.text()).not.toMatch(/urlsecret|querysecret/);
  });

  const question: AuthorizationQuestion = { account: 'alice', origin: 'hook', labels: { team: ['ops'] }, type: 'repository', name: 'site/app', actions: ['pull', 'push'] };
  const authz = (path: string, q: AuthorizationQuestion = question, extra: Partial<HookTargetConfig> = {}) =>
    createAuthorizationHook(hookConfig({ url: `${base}${path}`, ...extra }), {}).authorize(q, CONTEXT);

  it('authorization: 200 with a JSON array narrows; extra actions are ignored; 403, other statuses, objects and slowness give nothing', async () => {
    received.length = 0;
    expect(await authz('/authz-pull')).toEqual(['pull']);
    expect(JSON.parse(received[0]?.body ?? '')).toEqual(question);
    expect(await authz('/authz-everything', { ...question, actions: ['pull'] })).toEqual(['pull']);
    expect(await authz('/authz-everything')).toEqual(['pull', 'push']);
    expect(await authz('/deny')).toEqual([]);
    expect(await authz('/error')).toEqual([]);
    expect(await authz('/pass')).toEqual([]);
    expect(await authz('/authz-object')).toEqual([]);
    expect(await authz('/redirect')).toEqual([]);
    expect(await authz('/huge')).toEqual([]);
    const started = Date.now();
    expect(await authz('/slow', question, { timeoutMs: 300 })).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

// ---- authorization, executable ----------------------------------------------------------------

describe('authorization hook, executable', () => {
  const question: AuthorizationQuestion = { account: 'alice', origin: 'user', labels: { team: ['ops'] }, type: 'repository', name: 'site/app', actions: ['pull', 'push'] };

  it('narrows: sees the question on stdin, and what it allows is intersected with it', async () => {
    const input = join(dir, 'authz.input');
    const path = script('authz-pull.sh', `cat > '${input}'\necho '["pull"]'\n`);
    const hook = createAuthorizationHook(hookConfig({ command: [path] }), {});
    expect(await hook.authorize(question, CONTEXT)).toEqual(['pull']);
    expect(JSON.parse(readFileSync(input, 'utf8'))).toEqual(question);
  });

  it('cannot widen: actions that were not asked are not granted', async () => {
    const cap = capture();
    const hook = createAuthorizationHook(hookConfig({ command: [script('authz-widen.sh', 'echo \'["push", "delete", "*"]\'\n')] }), { log: cap.log });
    expect(await hook.authorize({ ...question, actions: ['pull'] }, CONTEXT)).toEqual([]);
    expect(await hook.authorize(question, CONTEXT)).toEqual(['push']);
    expect(cap.text()).toMatch(/not asked; they are ignored/);
  });

  it('gives nothing on exit 1, quietly', async () => {
    const cap = capture();
    const hook = createAuthorizationHook(hookConfig({ command: [script('authz-deny.sh', 'exit 1\n')] }), { log: cap.log });
    expect(await hook.authorize(question, CONTEXT)).toEqual([]);
    expect(cap.lines().filter((l) => Number(l.level) >= 40)).toEqual([]);
  });

  it('gives nothing, with a warning, on a hang (and the hook is gone), a crash, a signal or an unreadable answer', async () => {
    const pidFile = join(dir, 'authz-hang.pid');
    const cap = capture();
    const hang = createAuthorizationHook(hookConfig({ command: [script('authz-hang.sh', `echo $$ > '${pidFile}'\nexec sleep 30\n`)], timeoutMs: 300 }), { log: cap.log });
    const started = Date.now();
    expect(await hang.authorize(question, CONTEXT)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(exists(readPid(pidFile))).toBe(false);

    const bodies = ['echo \'["pull"]\'\nexit 3\n', 'kill -9 $$\n', 'echo \'{"actions": ["pull"]}\'\n', 'echo pull\n', 'exit 0\n', 'echo \'["pull"\'\n'];
    for (const [i, body] of bodies.entries()) {
      const hook = createAuthorizationHook(hookConfig({ command: [script(`authz-bad-${i}.sh`, body)] }), { log: cap.log });
      expect(await hook.authorize(question, CONTEXT), body).toEqual([]);
    }
    const warnings = cap.lines().filter((l) => l.level === 40);
    expect(warnings.map((l) => l.outcome)).toEqual(['timeout', 'exit_code', 'signal', 'malformed_answer', 'malformed_answer', 'malformed_answer', 'malformed_answer']);
    const missing = createAuthorizationHook(hookConfig({ command: [join(dir, 'missing-authz')] }), {});
    expect(await missing.authorize(question, CONTEXT)).toEqual([]);
  });

  it('does not run the hook for a question with no actions', async () => {
    const marker = join(dir, 'authz-empty.ran');
    const hook = createAuthorizationHook(hookConfig({ command: [script('authz-empty.sh', `touch '${marker}'\necho '["pull"]'\n`)] }), {});
    expect(await hook.authorize({ ...question, actions: [] }, CONTEXT)).toEqual([]);
    expect(existsSync(marker)).toBe(false);
  });
});
