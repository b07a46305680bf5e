import type { IncomingMessage, ServerResponse } from 'node:http';
import { fixedFieldsLogger, type Logger } from '../log.js';
import type { ServiceMetrics } from './metrics.js';

/**
 * One JSON log line and one histogram observation per HTTP request, for express apps and bare
 * node:http handlers alike. The request is logged as method, path, route pattern and address only:
 * headers (Authorization, cookies) and the query string (which may carry OAuth2 fields) never reach
 * the log line at all, and the logger's redaction stays in place underneath as a second net.
 *
 * The line has pino-http's shape (reqId, req, res, responseTime; "request completed", "request
 * aborted", "request errored"), but is built only when the request is done and only if its level is
 * enabled: pino-http made two child loggers and serialized the whole request up front, on every
 * request, whether or not the line was ever written.
 */

export interface ObserveOptions {
  log: Logger;
  metrics?: ServiceMetrics;
  /** The route pattern a request matched, e.g. `/hub-creds` or `unmatched`; a metric label. */
  route(req: IncomingMessage): string;
  /** Who the request says it is (device UUID, token id), when the request carries it. */
  who?(req: IncomingMessage): Record<string, string | null>;
}

/** Probes and scrapes would drown the request log at info level. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? raw : raw.slice(0, q);
}

export type RequestObserver = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

const MAX_REQ_ID = 0x7fffffff;

export function observeRequests(options: ObserveOptions): RequestObserver {
  const { metrics, route, who } = options;
  const log = options.log.child({ component: 'http' });
  // Completed requests: fields listed below only. Failures carry an error object: redacted.
  const lines = fixedFieldsLogger(options.log, { component: 'http' });
  let lastReqId = 0;

  return (req, res, next) => {
    const reqId = (lastReqId = (lastReqId + 1) & MAX_REQ_ID);
    const started = process.hrtime.bigint();
    const startedMs = Date.now();
    let logged = false;

    const writeLine = (err?: unknown) => {
      if (logged) return;
      logged = true;
      res.removeListener('close', onClose);
      res.removeListener('error', onError);
      const matched = route(req);
      const failed = err !== undefined || res.statusCode >= 500;
      const level = failed ? 'error' : QUIET_ROUTES.has(matched) ? 'debug' : 'info';
      if (!log.isLevelEnabled(level)) return;
      const line: Record<string, unknown> = {
        reqId,
        req: { method: req.method, path: pathOf(req.url), remoteAddress: req.socket?.remoteAddress },
        res: { statusCode: res.statusCode },
        responseTime: Date.now() - startedMs,
        route: matched,
        ...(who ? who(req) : {}),
      };
      if (failed) {
        line.err = err ?? new Error(`failed with status code ${res.statusCode}`);
        log.error(line, 'request errored');
        return;
      }
      lines[level](line, !req.readableAborted && res.writableEnded ? 'request completed' : 'request aborted');
    };
    const onFinish = () => {
      if (metrics) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.httpDuration.observe(
          { service: metrics.service, route: route(req), method: req.method ?? 'GET', status: String(res.statusCode) },
          seconds,
        );
      }
      writeLine();
    };
    const onClose = () => writeLine();
    const onError = (e: unknown) => writeLine(e);
    res.once('finish', onFinish);
    res.once('close', onClose);
    res.once('error', onError);
    next?.();
  };
}

/** The route pattern express matched, or `unmatched` (a label must never be a raw path). */
export function expressRoute(req: IncomingMessage): string {
  const matched = (req as IncomingMessage & { route?: { path?: unknown } }).route?.path;
  if (typeof matched === 'string') return matched;
  if (Array.isArray(matched) && typeof matched[0] === 'string') return matched[0];
  const path = pathOf(req.url);
  return QUIET_ROUTES.has(path) ? path : 'unmatched';
}
