#!/usr/bin/env node

/**
 * `tollgate`: the operator's and CI's command line. See `tollgate help`.
 *
 * The long-running commands in their plain form (`tollgate serve gateway`, `serve authsvc` and `up`,
 * with at most `--config FILE`, in local mode) go straight to their own code without loading the
 * command table: its every command's modules would cost them start-up time and, for as long as
 * they run, memory. Anything else, those commands with other options included, is the full
 * command line, which also answers their help and usage errors.
 */
const argv = process.argv.slice(2);
const plain = plainInvocation(argv);
process.exitCode =
  plain?.command === 'up'
    ? await (await import('./up.js')).upProcess(plain.configFile)
    : plain
      ? await (await import('./serve.js')).serveProcess(plain.command, plain.configFile)
      : await (await import('./run.js')).runCli(argv);

function plainInvocation(args: string[]): { command: 'up' | 'gateway' | 'authsvc'; configFile: string | null } | null {
  // Remote mode refuses these commands; the full command line says so.
  if (process.env.TOLLGATE_URL) return null;
  let command: 'up' | 'gateway' | 'authsvc';
  let rest: string[];
  if (args[0] === 'up') [command, rest] = ['up', args.slice(1)];
  else if (args[0] === 'serve' && (args[1] === 'gateway' || args[1] === 'authsvc')) [command, rest] = [args[1], args.slice(2)];
  else return null;
  if (rest.length === 0) return { command, configFile: null };
  if (rest.length === 1 && rest[0]!.startsWith('--config=') && rest[0]!.length > 9) return { command, configFile: rest[0]!.slice(9) };
  if (rest.length === 2 && rest[0] === '--config' && rest[1] !== '' && !rest[1]!.startsWith('-')) return { command, configFile: rest[1]! };
  return null;
}
