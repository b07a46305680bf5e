#!/usr/bin/env node

/**
 * `tollgate`: the operator's and CI's command line. See `tollgate help`.
 *
 * A service process (`tollgate serve gateway` or `serve authsvc`, with at most `--config FILE`)
 * goes straight to the service's code (serve.ts) without loading the command table, which would
 * cost it every command's modules in start-up time and memory for as long as it runs. Anything
 * else, including those commands with other options, is the full command line.
 */
const argv = process.argv.slice(2);
const service = plainServe(argv);
process.exitCode = service
  ? await (await import('./serve.js')).serveProcess(service.name, service.configFile)
  : await (await import('./run.js')).runCli(argv);

function plainServe(args: string[]): { name: 'gateway' | 'authsvc'; configFile: string | null } | null {
  const [verb, name, ...rest] = args;
  if (verb !== 'serve' || (name !== 'gateway' && name !== 'authsvc')) return null;
  if (rest.length === 0) return { name, configFile: null };
  if (rest.length === 1 && rest[0]!.startsWith('--config=') && rest[0]!.length > 9) return { name, configFile: rest[0]!.slice(9) };
  if (rest.length === 2 && rest[0] === '--config' && rest[1] !== '' && !rest[1]!.startsWith('-')) return { name, configFile: rest[1]! };
  return null;
}
