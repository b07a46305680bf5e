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

export function createLogger(name: string, level: LoggerOptions['level'] = 'info', destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
