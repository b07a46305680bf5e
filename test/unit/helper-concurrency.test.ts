import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closedPort, createTestPki, DEVICE_UUID, issueToken, startFakeGateway, writeDeviceConfig, type FakeGateway, type TestPki } from './helper-fixture.js';

/**
 * The compiled helper as docker, skopeo and podman run it: a separate process per call, many at
 * once during a `compose pull`.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const binary = path.join(root, 'dist', 'helper', 'main.js');

/** dist/ is built once by the test run's global setup. */
function ensureBuilt(): void {
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run the tests with npm test`);
}

interface Outcome {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the helper; `input` undefined leaves stdin open and unwritten, as a terminal would. */
function runBinary(args: string[], input: string | undefined, env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binary, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // The helper stops reading oversized input; the rest of our write then fails with EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
    if (input !== undefined) child.stdin.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', () => {
      clearTimeout(timer);
      child.stdin.destroy();
    });
  });
}

let dir: string;
let pki: TestPki;
let gateway: FakeGateway;
let env: NodeJS.ProcessEnv;
let cacheRun = 0;

beforeAll(async () => {
  ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-helper-proc-'));
  pki = await createTestPki(path.join(dir, 'pki'));
  gateway = await startFakeGateway(pki);
});
afterAll(async () => {
  await gateway.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  gateway.calls = 0;
  gateway.secrets = [];
  gateway.behaviour = issueToken(300);
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    TOLLGATE_DEVICE_CONFIG: writeDeviceConfig(pki.dir, gateway.url),
    TOLLGATE_CACHE_DIR: path.join(dir, `cache-${++cacheRun}`),
  };
});

describe('docker-credential-tollgate as a process', () => {
  it('starts with a node shebang', () => {
    expect(fs.readFileSync(binary, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('20 concurrent gets cost exactly one gateway call', async () => {
    // A slow gateway makes sure the helpers really overlap.
    gateway.behaviour = (call, cn) => ({ ...issueToken(300)(call, cn), delayMs: 400 });
    const urls = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? '127.0.0.1:5000' : 'https://127.0.0.1:5000/v2/'));
    const outcomes = await Promise.all(urls.map((url) => runBinary(['get'], url, env)));
    for (const [i, o] of outcomes.entries()) {
      expect(o.code, o.stdout).toBe(0);
      expect(JSON.parse(o.stdout)).toEqual({ ServerURL: urls[i], Username: DEVICE_UUID, Secret: gateway.secrets[0] });
      expect(o.stderr).toBe('');
    }
    expect(gateway.calls).toBe(1);
    const cacheDir = env.TOLLGATE_CACHE_DIR as string;
    expect(fs.readdirSync(cacheDir).filter((f) => !f.endsWith('.json'))).toEqual([]);
  });

  it('answers "credentials not found" for other registries', async () => {
    expect(await runBinary(['get'], 'registry-1.docker.io', env)).toEqual({ stdout: 'credentials not found in native keychain\n', stderr: '', code: 1 });
  });

  it('reports an unreachable gateway in one line on stdout, exit 1, nothing on stderr', async () => {
    const url = `https://127.0.0.1:${await closedPort()}`;
    const o = await runBinary(['get'], '127.0.0.1:5000', { ...env, TOLLGATE_DEVICE_CONFIG: writeDeviceConfig(pki.dir, url) });
    expect(o).toEqual({ stdout: `tollgate: gateway ${url} unreachable (connection refused)\n`, stderr: '', code: 1 });
  });

  it('list and version do not wait for stdin', async () => {
    const list = await runBinary(['list'], undefined, env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ '127.0.0.1:5000': DEVICE_UUID, 'hub.example.com': DEVICE_UUID });
    const version = await runBinary(['version'], undefined, env);
    expect(version.stdout).toMatch(/^docker-credential-tollgate \d+\.\d+\.\d+/);
  });

  it('store and erase', async () => {
    expect(await runBinary(['store'], '{"ServerURL":"127.0.0.1:5000","Username":"x","Secret":"y"}', env)).toEqual({ stdout: '', stderr: '', code: 0 });
    await runBinary(['get'], '127.0.0.1:5000', env);
    expect(await runBinary(['erase'], '127.0.0.1:5000', env)).toEqual({ stdout: '', stderr: '', code: 0 });
    await runBinary(['get'], '127.0.0.1:5000', env);
    expect(gateway.calls).toBe(2);
  });

  it('refuses oversized stdin without reading all of it', async () => {
    const o = await runBinary(['get'], 'x'.repeat(4 * 1024 * 1024), env);
    expect(o).toEqual({ stdout: 'tollgate: input on stdin is larger than 64 KiB; expected a registry server URL\n', stderr: '', code: 1 });
  });

  it('usage without an argument', async () => {
    const o = await runBinary([], undefined, env);
    expect(o.code).toBe(1);
    expect(o.stdout).toMatch(/^Usage: docker-credential-tollgate /);
  });

  it('TOLLGATE_HELPER_DEBUG=1 explains on stderr and keeps stdout clean', async () => {
    const o = await runBinary(['get'], '127.0.0.1:5000', { ...env, TOLLGATE_HELPER_DEBUG: '1' });
    expect(o.code).toBe(0);
    const secret = (JSON.parse(o.stdout) as { Secret: string }).Secret;
    expect(o.stderr).toContain('docker-credential-tollgate: debug:');
    expect(o.stderr).toContain(`GET ${gateway.url}/hub-creds/`);
    expect(o.stderr).not.toContain(secret);
  });
});
