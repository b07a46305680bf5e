import express, { type Request, type RequestHandler, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { identifyDevice, mintDeviceToken, type AuthorityDeps, type IdentificationContext } from '../shared/authority/index.js';
import { isTollgateError } from '../shared/errors.js';
import { rateLimited } from '../shared/http/rate-limited.js';
import { errorHandler, notFoundHandler, sendError } from '../shared/http/errors.js';
import type { Logger } from '../shared/log.js';
import { expressRoute, observeRequests } from '../shared/ops/http-observe.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import type { RequestLimiter } from '../shared/ops/rate-limit.js';
import { assessReadiness, storeCheck, type ReadinessReport } from '../shared/ops/readiness.js';
import type { DeviceAuthView } from '../shared/store/types.js';
import { requestCertificate } from './client-certificate.js';
import { deviceApiRouter } from './device-api.js';
import { lifecycleRouter, type EstResponse } from './lifecycle.js';
import { registrationRouter, type RegistrationSettings } from './registration.js';
import { presentedClient } from './trust.js';

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

function sourceOf(req: Request): string | null {
  return req.socket.remoteAddress ?? null;
}

/** The presented client certificate's fingerprint and common name, before any check: for logs and limits. */
function peerCertificate(req: IncomingMessage): { fingerprint256: string; commonName: string | null } | null {
  const cert = requestCertificate(req);
  if (!cert || typeof cert.fingerprint256 !== 'string') return null;
  const cn = cert.subject?.CN;
  return { fingerprint256: cert.fingerprint256, commonName: typeof cn === 'string' ? cn : null };
}

function claimedDevice(req: IncomingMessage): Record<string, string | null> {
  const cert = peerCertificate(req);
  return cert ? { device: cert.commonName, fingerprint256: cert.fingerprint256 } : {};
}

/**
 * 429 with Retry-After once a device or an address asks too often, or an address keeps failing
 * authentication. Only 401s count as failures: a 403 answers a valid certificate of a known device
 * (revoked, disabled), whose retries the per-device bucket already bounds.
 */
function limitRequests(
  limiter: RequestLimiter,
  metrics: ServiceMetrics | undefined,
  log: Logger,
  body: (code: string, message: string) => unknown = (code, message) => ({ error: { code, message } }),
): RequestHandler {
  return async (req, res, next) => {
    const source = sourceOf(req);
    const verdict = await limiter.check({ source, subject: peerCertificate(req)?.fingerprint256 ?? null });
    if (verdict) {
      const answer = rateLimited(verdict, 'requests', metrics);
      res.status(answer.status).set(answer.headers).json(body(answer.reason, answer.message));
      return;
    }
    res.once('finish', () => {
      if (res.statusCode === 401) limiter.failed(source).catch((e: unknown) => log.error({ err: e }, 'could not count a failed authentication'));
    });
    next();
  };
}

/**
 * The device-facing API. Every route but the health checks identifies the device from its client
 * certificate on every request; there is no session, so a revocation bites on the next request,
 * whatever the connection has done before.
 */
export function createGatewayApp({ deps, log, metrics, limiter, estResponse, registration, readiness }: GatewayAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // No proxy is trusted: X-Forwarded-* and client-certificate headers from a client are ignored.
  app.set('trust proxy', false);

  app.use(observeRequests({ log, ...(metrics ? { metrics } : {}), route: expressRoute, who: claimedDevice }));

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
    const client = await presentedClient(deps.store, req, deps.now());
    try {
      return await identifyDevice(deps, client, { action, source: sourceOf(req) });
    } catch (e) {
      if (!isTollgateError(e)) throw e;
      sendError(res, e);
      return null;
    }
  }

  app.get(['/hub-creds', '/hub-creds/'], async (req, res) => {
    const dev = await device(req, res, 'token.refused');
    if (!dev) return;
    const minted = await mintDeviceToken(deps, dev, sourceOf(req));
    res.set('Cache-Control', 'no-store');
    res.json({
      Username: minted.username,
      Secret: minted.secret,
      ExpiresAt: new Date(minted.expiresAt).toISOString(),
      ExpiresIn: Math.floor((minted.expiresAt - deps.now()) / 1000),
    });
  });

  app.use(deviceApiRouter({ deps, device }));
  app.use(lifecycleRouter({ deps, device, est: estResponse ?? 'rfc7030' }));

  app.use(notFoundHandler);
  app.use(errorHandler(log));
  return app;
}
