import express, { type Request, type RequestHandler, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthorityDeps, IdentificationContext } from '../shared/authority/index.js';
import { isTollgateError } from '../shared/errors.js';
import { errorHandler, notFoundHandler, sendError } from '../shared/http/errors.js';
import type { Logger } from '../shared/log.js';
import { expressRoute, observeRequests } from '../shared/ops/http-observe.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import type { RequestLimiter } from '../shared/ops/rate-limit.js';
import { assessReadiness, storeCheck, type ReadinessReport } from '../shared/ops/readiness.js';
import type { DeviceAuthView } from '../shared/store/types.js';
import { requestCertificate } from './client-certificate.js';
import { HUB_CREDS_ROUTE, hubCredsHandler, identify, isHubCreds, limitVerdict } from './hub-creds.js';
import { deviceApiRouter } from './device-api.js';
import { lifecycleRouter, type EstResponse } from './lifecycle.js';
import { registrationRouter, type RegistrationSettings } from './registration.js';

export interface GatewayAppOptions {
  deps: AuthorityDeps;
  log: Logger;
  metrics?: ServiceMetrics;
  /** Limits on /hub-creds/, /events and registration (absent: none). */
  limiter?: RequestLimiter;
  /** How EST re-enrollment answers (default rfc7030). */
  estResponse?: EstResponse;
  /** Device self-registration at /ota/devices/ (absent: not served). */
  registration?: RegistrationSettings;
  /** What /readyz checks (default: the store). */
  readiness?: () => Promise<ReadinessReport>;
}

function claimedDevice(req: IncomingMessage): Record<string, string | null> {
  const cert = requestCertificate(req);
  if (!cert || typeof cert.fingerprint256 !== 'string') return {};
  const cn = cert.subject?.CN;
  return { device: typeof cn === 'string' ? cn : null, fingerprint256: cert.fingerprint256 };
}

/** The limits as express middleware (see limitVerdict). */
function limitRequests(
  limiter: RequestLimiter,
  metrics: ServiceMetrics | undefined,
  log: Logger,
  body: (code: string, message: string) => unknown = (code, message) => ({ error: { code, message } }),
): RequestHandler {
  return (req, res, next) => {
    void limitVerdict(limiter, metrics, log, req, res).then((limited) => {
      if (!limited) return next();
      res.status(limited.status).set(limited.headers).json(body(limited.code, limited.message));
    }, next);
  };
}

/**
 * The device-facing API. Every route but the health checks identifies the device from its client
 * certificate on every request; there is no session, so a revocation bites on the next request,
 * whatever the connection has done before. `GET /hub-creds/` is served in front of express
 * (hub-creds.ts); everything else by the express app below.
 */
export function createGatewayHandler(options: GatewayAppOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { deps, log, metrics, limiter } = options;
  const app = createGatewayApp(options);
  const hubCreds = hubCredsHandler({ deps, log, ...(metrics ? { metrics } : {}), ...(limiter ? { limiter } : {}) });
  const observe = observeRequests({
    log,
    ...(metrics ? { metrics } : {}),
    route: (req) => (isHubCreds(req) ? HUB_CREDS_ROUTE : expressRoute(req)),
    who: claimedDevice,
  });
  return (req, res) => {
    observe(req, res);
    if (isHubCreds(req)) hubCreds(req, res);
    else app(req, res);
  };
}

function createGatewayApp({ deps, log, metrics, limiter, estResponse, registration, readiness }: GatewayAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // No proxy is trusted: X-Forwarded-* and client-certificate headers from a client are ignored.
  app.set('trust proxy', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const assess = readiness ?? (() => assessReadiness({ store: storeCheck(deps.store) }));
  app.get('/readyz', async (_req, res) => {
    const report = await assess();
    if (!report.ready) res.status(503).set('Retry-After', String(report.retryAfterSeconds));
    res.json(report.body);
  });

  if (limiter) {
    app.use(['/hub-creds', '/events'], limitRequests(limiter, metrics, log));
    // lmp-device-register prints only top-level fields of a refusal.
    app.use('/ota/devices', limitRequests(limiter, metrics, log, (code, message) => ({ code, message })));
  }
  // Before anything that identifies a device: a registering device has no certificate yet.
  if (registration) app.use(registrationRouter(deps, registration, log));

  /** Resolves the device, or answers the refusal (which the authority recorded) and returns null. */
  async function device(req: Request, res: Response, action: IdentificationContext['action']): Promise<DeviceAuthView | null> {
    try {
      return await identify(deps, req, action);
    } catch (e) {
      if (!isTollgateError(e)) throw e;
      sendError(res, e);
      return null;
    }
  }

  app.use(deviceApiRouter({ deps, device }));
  app.use(lifecycleRouter({ deps, device, est: estResponse ?? 'rfc7030' }));

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}
