import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realBinaries } from '../support/binaries.js';
import { ROOT } from '../support/topology.js';

/**
 * The README's walk-through, run as written: `npm start` in a fresh copy of the project, then every
 * block marked `<!-- newcomer -->` in order, in one shell session's environment. Blocks marked
 * `<!-- newcomer: fails -->` must fail, as the README says they do. It uses the README's fixed
 * ports (8443, 8442, 5001, 5000), which must be free.
 */
const tools = realBinaries(['docker-registry', 'skopeo', 'curl']);

interface Block {
  code: string;
  fails: boolean;
}

function newcomerBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  const re = /<!-- newcomer(: fails)? -->\n```sh\n([\s\S]*?)```/g;
  for (let m = re.exec(readme); m; m = re.exec(readme)) blocks.push({ code: m[2]!, fails: m[1] !== undefined });
  return blocks;
}

async function waitForHealth(url: string, timeoutMs: number, process?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (process && process.exitCode !== null) throw new Error(`the process exited with ${process.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The walk-through starts the registry in the background from its own directory. End exactly those
 * processes (found by their working directory), never another registry on the machine.
 */
function killProcessesIn(directory: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      continue; // gone, or not ours to read
    }
    if (cwd !== directory && !cwd.startsWith(`${directory}/`)) continue;
    try {
      process.kill(Number(entry), 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

describe.skipIf(!tools.available)('the README walk-through', () => {
  let dir: string;
  let start: ChildProcess;
  let startLog = '';
  const blocks = newcomerBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-readme-'));
    // A fresh clone after `npm ci`: the sources, and the installed dependencies.
    for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'shared', 'gateway', 'authsvc', 'admin', 'cli', 'helper', 'tools', 'bench', 'bin', 'console']) {
      if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    start = spawn('npm', ['start'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    start.stdout?.on('data', (d: Buffer) => (startLog += d.toString()));
    start.stderr?.on('data', (d: Buffer) => (startLog += d.toString()));
    try {
      await waitForHealth('http://127.0.0.1:5001/healthz', 90_000, start);
      await waitForHealth('http://127.0.0.1:8442/healthz', 10_000);
    } catch (e) {
      throw new Error(`npm start did not come up: ${(e as Error).message}\n${startLog}`);
    }
  }, 120_000);

  afterAll(() => {
    if (start?.pid) {
      try {
        process.kill(-start.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    if (dir) killProcessesIn(dir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has the blocks it follows', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(7);
    expect(blocks.filter((b) => b.fails).length).toBeGreaterThanOrEqual(2);
  });

  it('works word for word', async () => {
    // One shell session: the environment each block exports carries over to the next, as in a terminal.
    let env = '';
    for (const [i, block] of blocks.entries()) {
      const script = `set -eu\ncd ${JSON.stringify(dir)}\n${env}\n${block.code}\nexport -p > "$0"\n`;
      const envFile = join(dir, `.env-${i}`);
      const r = spawnSync('bash', ['-c', script, envFile], { env: process.env, encoding: 'utf8', timeout: 120_000 });
      const output = `${r.stdout}${r.stderr}`;
      if (block.fails) {
        expect(r.status, `block ${i} should fail:\n${block.code}\n${output}`).not.toBe(0);
        expect(output).toMatch(/revoked|denied|unauthorized/i);
      } else {
        expect(r.status, `block ${i} failed:\n${block.code}\n${output}`).toBe(0);
        env = readFileSync(envFile, 'utf8');
      }
      if (block.code.includes('docker-registry serve')) await waitForHealth('http://127.0.0.1:5000/', 20_000);
    }
    const pulled = JSON.parse(readFileSync(join(dir, 'pulled', 'index.json'), 'utf8')) as { manifests: unknown[] };
    expect(pulled.manifests).toHaveLength(1);
  }, 300_000);
});
