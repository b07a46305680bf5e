import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OciImage } from './oci.js';

/** skopeo, the real registry client, run as a process with a private HOME. */
export interface SkopeoRun {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Skopeo {
  run(args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<SkopeoRun>;
  /** Pushes an OCI layout to `repo:tag` with Basic credentials. */
  push(image: OciImage, repo: string, username: string, password: string, tag?: string): Promise<SkopeoRun>;
  /** Pulls `repo:tag` into a fresh OCI layout under `workDir` with Basic credentials. */
  pull(repo: string, username: string, password: string, tag?: string): Promise<SkopeoRun>;
}

export function skopeoFor(registryHost: string, workDir: string): Skopeo {
  const home = join(workDir, 'skopeo-home');
  mkdirSync(home, { recursive: true });
  const run = (args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<SkopeoRun> =>
    new Promise((resolve) => {
      const child = spawn('skopeo', ['--command-timeout', '45s', ...args], { env: { ...process.env, HOME: home, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ status: code ?? -1, stdout, stderr });
      });
    });
  const ref = (repo: string, tag: string) => `docker://${registryHost}/${repo}:${tag}`;
  return {
    run,
    push: (image, repo, username, password, tag = 'latest') =>
      run(['copy', '--dest-tls-verify=false', '--dest-creds', `${username}:${password}`, `oci:${image.dir}:${image.tag}`, ref(repo, tag)]),
    pull: (repo, username, password, tag = 'latest') => {
      const out = join(workDir, 'pulled', randomUUID());
      mkdirSync(out, { recursive: true });
      return run(['copy', '--src-tls-verify=false', '--src-creds', `${username}:${password}`, ref(repo, tag), `oci:${out}:x`]);
    },
  };
}
