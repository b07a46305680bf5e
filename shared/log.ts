import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * Every log line of every Tollgate process goes through one of these loggers. Redaction is
 * configured here, once: credentials are never logged, whatever object a caller passes in.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  'password',
  'secret',
  'Secret',
  'token',
  'access_token',
  'refresh_token',
  'privateKey',
  'privateKeyPem',
  '*.password',
  '*.secret',
  '*.Secret',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.privateKey',
  '*.privateKeyPem',
];

/**
 * Lines go to stdout asynchronously: a line is handed to the kernel by a write that does not block
 * the request that logged it, and lines logged while a write is under way go out together with the
 * next one. A synchronous write per line cost the realm about a tenth of its throughput (bench/,
 * suite realm). The lines still pending when the process exits, however it exits short of SIGKILL,
 * are written then (pino flushes its asynchronous destinations on exit).
 */
let stdout: pino.DestinationStream | undefined;

/** One per process, shared by its loggers, so that two services in one process never interleave a line. */
export function stdoutDestination(): pino.DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: false });
  return stdout;
}

export function createLogger(name: string, level: LoggerOptions['level'] = 'info', destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, destination ?? stdoutDestination());
}

/**
 * A child of `log` for lines whose every field is named by the code that writes them, from values
 * that are never secret: the request line (method, path without its query, status, address) and the
 * audit line (an audit record's fields, which the store keeps and admins read). No object a caller
 * hands in reaches such a line, so redaction has nothing to find there, and its wildcard paths
 * (`*.secret`...) run on every field of every line: about a tenth of what a realm request costs
 * (bench/, suite realm). Anything else, error objects included, goes through the redacting logger.
 */
export function fixedFieldsLogger(log: Logger, bindings: Record<string, string>): Logger {
  return log.child(bindings, { redact: [] });
}

export type { Logger };
