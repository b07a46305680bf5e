import type { IncomingMessage, ServerResponse } from 'node:http';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../log.js';
import type { ServiceMetrics } from './metrics.js';

/**
 * One JSON log line and one histogram observation per HTTP request, for express apps and bare
 * node:http handlers alike. The request is logged as method, path, route pattern and address only:
 * headers (Authorization, cookies) and the query string (which may carry OAuth2 fields) never reach
 * the log line at all, and the logger's redaction stays in place underneath as a second net.
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

interface SerializedRequest {
  method?: string;
  url?: string;
  remoteAddress?: string;
}

export type RequestObserver = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

export function observeRequests(options: ObserveOptions): RequestObserver {
  const { metrics, route, who } = options;
  const logger = pinoHttp({
    logger: options.log.child({ component: 'http' }),
    quietReqLogger: true,
    serializers: {
      // Receives pino-std-serializers' request object; keeps the fields that identify nothing secret.
      req: (r: SerializedRequest) => ({ method: r.method, path: pathOf(r.url), remoteAddress: r.remoteAddress }),
      res: (r: { statusCode?: number }) => ({ statusCode: r.statusCode }),
    },
    customLogLevel: (req, res, err) => {
      if (err || res.statusCode >= 500) return 'error';
      return QUIET_ROUTES.has(route(req)) ? 'debug' : 'info';
    },
    // Computed when the response is done: only then is the matched route known.
    customSuccessObject: (req, res, val: Record<string, unknown>) => ({ ...val, route: route(req), ...(who ? who(req) : {}) }),
    customErrorObject: (req, res, _err, val: Record<string, unknown>) => ({ ...val, route: route(req), ...(who ? who(req) : {}) }),
  });

  return (req, res, next) => {
    if (metrics) {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.httpDuration.observe(
          { service: metrics.service, route: route(req), method: req.method ?? 'GET', status: String(res.statusCode) },
          seconds,
        );
      });
    }
    logger(req, res, next);
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
