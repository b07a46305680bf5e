import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { freePort } from '../support/ports.js';
import { createTestAuthority, type Credentials, type TestAuthority } from '../support/store.js';
import { CLI } from '../support/topology.js';

/**
 * SIGTERM while requests are in flight: every request the server answered got a whole response,
 * and the process exits 0. Requests that find the listener already closed are not answered at all,
 * which is what a client retries. Request lines are written asynchronously; none of them may be
 * lost at the exit: every answered request has its line.
 */

let t: TestAuthority;
let port: number;
let good: Credentials;

beforeAll(async () => {
  port = await freePort();
  // Limits off: this test fires as fast as it can from one address on purpose.
  t = await createTestAuthority({ config: { authsvc: { listen: { host: '127.0.0.1', port } }, limits: { enabled: false }, log: { level: 'info' } } });
  await t.signingKey();
  const factory = await t.factory('acme');
  good = await t.deviceToken(await t.device(factory));
});

afterAll(() => t?.cleanup());

interface Outcome {
  answered: number;
  incomplete: string[];
  unexpected: number[];
}

async function hammer(url: string, stop: () => boolean, creds: Credentials, outcome: Outcome): Promise<void> {
  while (!stop()) {
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: basicAuthorization(creds.username, creds.secret) } });
    } catch {
      // Not answered (connection refused or closed before a response): fine once stopping.
      await new Promise((resolve) => setTimeout(resolve, 5));
      continue;
    }
    try {
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 200 && typeof body.token !== 'string') outcome.incomplete.push('200 without a token');
      if (res.status !== 200 && res.status !== 401) outcome.unexpected.push(res.status);
      outcome.answered += 1;
    } catch (e) {
      outcome.incomplete.push(`status ${res.status}: ${(e as Error).message}`);
    }
  }
}

describe('graceful shutdown', () => {
  it('finishes in-flight requests on SIGTERM and exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', 'authsvc'], {
      // No metrics listener: its fixed default port may be held by another suite's service.
      env: { ...process.env, TOLLGATE_CONFIG: join(t.dir, 'tollgate.yml'), TOLLGATE_METRICS_ENABLED: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const stdoutClosed = new Promise<void>((resolve) => child.stdout.once('close', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const up = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error(`authsvc did not become ready: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    let exitedYet = false;
    void exited.then(() => (exitedYet = true));
    const outcome: Outcome = { answered: 0, incomplete: [], unexpected: [] };
    const url = `${base}/token?service=tollgate-registry&scope=repository:acme/app:pull`;
    const bad = { username: good.username, secret: 'tgd_' + 'Z'.repeat(43) };
    const loops = [good, bad, good, bad, good, good].map((c) => hammer(url, () => exitedYet, c, outcome));

    await new Promise((resolve) => setTimeout(resolve, 400));
    const answeredBeforeStop = outcome.answered;
    child.kill('SIGTERM');
    const code = await exited;
    await Promise.all(loops);

    expect(code, stderr).toBe(0);
    expect(answeredBeforeStop).toBeGreaterThan(10);
    expect(outcome.incomplete).toEqual([]);
    expect(outcome.unexpected).toEqual([]);

    await stdoutClosed;
    const lines = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { msg?: string; req?: { path?: string } });
    const requestLines = lines.filter((l) => l.msg === 'request completed' && l.req?.path === '/token');
    expect(requestLines).toHaveLength(outcome.answered);
    expect(lines.at(-1)?.msg).toBe('stopped');
  });
});
