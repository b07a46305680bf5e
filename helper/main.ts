#!/usr/bin/env node
/**
 * docker-credential-tollgate: the credential helper docker, skopeo and podman run on a device,
 * e.g. for `{"credHelpers": {"127.0.0.1:5000": "tollgate"}}`. This file only connects process
 * stdio to runHelper; see run.ts.
 */
import { MAX_STDIN_BYTES, READS_STDIN } from './protocol.js';
import { runHelper } from './run.js';
import { readLimited } from './stdin.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let stdin = '';
  // Only actions that take input read it: `list` and `version` must not wait on a terminal.
  if (args.length === 1 && READS_STDIN.has(args[0] as string)) stdin = await readLimited(process.stdin, MAX_STDIN_BYTES);
  const { stdout, exitCode } = await runHelper(args, stdin, process.env);
  process.stdout.write(stdout);
  process.exitCode = exitCode;
}

main().catch((e: unknown) => {
  // runHelper never throws; this covers stdin itself failing. Still one line, still on stdout.
  process.stdout.write(`tollgate: cannot read stdin (${e instanceof Error ? e.message.replace(/\s+/g, ' ') : String(e)})\n`);
  process.exitCode = 1;
});
