import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { INSTALL_HINT, onPath } from './binaries.js';
import { freePort } from './ports.js';

/**
 * A real Docker distribution registry (`docker-registry`, as Debian packages 2.8) on loopback,
 * configured with token authentication, in a temporary directory of its own.
 */

export const REGISTRY_BINARY = 'docker-registry';

/** Whether the registry binary is on PATH. Suites decide themselves whether a miss skips or fails. */
export function registryAvailable(binary = REGISTRY_BINARY): boolean {
  return onPath(binary);
}

/** The message a suite prints when it skips for want of the registry. */
export function registryMissingMessage(binary = REGISTRY_BINARY): string {
  return `${binary} is not on PATH; install it with: ${INSTALL_HINT}`;
}

export interface RegistryOptions {
  /** The `auth.token` mapping: realm, service, issuer, rootcertbundle, and for 3.x jwks, signingalgorithms. */
  authToken: Record<string, unknown>;
  /** Default `docker-registry`. */
  binary?: string;
  /** Keep the directory after stop() (for debugging). */
  keep?: boolean;
  startTimeoutMs?: number;
  /** The registry's log level (default warn); token refusal causes are logged at info. */
  logLevel?: 'info' | 'warn';
}

export interface RunningRegistry {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  dir: string;
  /** What the registry printed so far (its log). */
  output(): string;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status < 500;
  } catch {
    return false;
  }
}

/**
 * Starts the registry and resolves once `/v2/` answers (401 with token auth). The port comes from
 * the OS; should another process take it between probe and bind, the start is retried.
 */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const binary = options.binary ?? REGISTRY_BINARY;
  if (!registryAvailable(binary)) throw new Error(registryMissingMessage(binary));
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-registry-'));
  const storage = join(dir, 'storage');
  mkdirSync(storage);
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const configFile = join(dir, 'config.yml');
    writeFileSync(
      configFile,
      stringify({
        version: 0.1,
        log: { level: options.logLevel ?? 'warn', accesslog: { disabled: true } },
        storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
        http: { addr: `127.0.0.1:${port}` },
        auth: { token: options.authToken },
      }),
    );
    let output = '';
    const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', (e) => {
      exited = true;
      output += String(e);
    });

    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    while (!exited && Date.now() < deadline) {
      if (await answers(`${url}/v2/`)) {
        return {
          url,
          port,
          dir,
          output: () => output,
          async stop() {
            await stopChild(child);
            if (!options.keep) rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await stopChild(child);
    lastError = exited ? `exited: ${output.trim()}` : `did not answer on ${url}/v2/ in time: ${output.trim()}`;
    // Only a lost port race is worth another try; a bad configuration fails the same way again.
    if (!/address already in use/i.test(output)) break;
  }
  if (!options.keep) rmSync(dir, { recursive: true, force: true });
  throw new Error(`${binary} did not start: ${lastError}`);
}
