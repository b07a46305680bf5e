import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { invalidInput } from '../shared/errors.js';
import { errorHandler, notFoundHandler } from '../shared/http/errors.js';
import { rateLimited } from '../shared/http/rate-limited.js';
import type { Logger } from '../shared/log.js';
import { expressRoute, observeRequests } from '../shared/ops/http-observe.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import type { RequestLimiter } from '../shared/ops/rate-limit.js';
import { adminRoutes, type Route } from './api.js';
import { ConsoleAuth } from './console-auth.js';
import { CONSOLE_CSP, consoleHandler } from './console-static.js';
import { openApiDocument } from './openapi.js';
import type { ReadinessReport } from '../shared/ops/readiness.js';
import type { AdminService, Principal } from './service.js';
import { SessionStore } from './session.js';

/**
 * The admin HTTP API and the console: a thin JSON skin over AdminService, which holds every
 * authorization rule and audits every mutation. This layer only authenticates (a bearer token, or
 * a console session and its CSRF token), checks request shapes against the route table and maps
 * results to status codes; the console's files are served at /.
 */

export interface AdminAppOptions {
  service: AdminService;
  log: Logger;
  /** Request durations go here when set (the admin API shares the gateway's process and registry). */
  metrics?: ServiceMetrics;
  /** What /readyz checks (absent: /readyz answers 404, as for an app not behind a store). */
  readiness?: () => Promise<ReadinessReport>;
  /** What an enrollment answer tells the device about the gateway. */
  enrollment: {
    /** PEM bundle devices verify the gateway's server certificate with. */
    gatewayCa: string;
    /** The gateway URL devices use (gatewayUrl(config)). */
    gateway: string;
  };
  /** Console sessions; default: sessions ending after 30 idle minutes, no OIDC, cookies without Secure. */
  console?: ConsoleAuth;
  /** Where the built console is (default dist/console). */
  consoleDir?: string;
  /** The version the OpenAPI document states. */
  version?: string;
  /**
   * The address limits in front of authentication (absent: none): an address that keeps presenting
   * bad credentials is answered 429 for a while, which also bounds the refusals the audit trail records.
   */
  limiter?: RequestLimiter;
}

/** Body size cap: a CSR or certificate is a few KiB; anything near this limit is not one. */
export const MAX_BODY_BYTES = 64 * 1024;

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const clip = (s: string) => (s.length > 64 ? `${s.slice(0, 64)}...` : s);

/**
 * Parses `value` or throws invalid_input naming the first offending key: `body_unknown_key` /
 * `query_unknown_key` for keys the route does not take, `<key>_invalid` for a wrong type.
 */
function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'query'): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const what = where === 'body' ? 'key' : 'query parameter';
    throw invalidInput(`${where}_unknown_key`, `unknown ${what} ${issue.keys.map((k) => JSON.stringify(clip(k))).join(', ')} in the request ${where}`, {
      keys: issue.keys.map(clip),
    });
  }
  if (!issue || issue.path.length === 0) {
    throw invalidInput(`${where}_invalid`, `the request ${where} must be a JSON object`);
  }
  // A discriminated union reports a bad discriminator at the root, naming it in the issue.
  const key = String(issue.path[0] ?? (issue as { discriminator?: unknown }).discriminator ?? 'body');
  throw invalidInput(`${snake(key)}_invalid`, `${issue.path.join('.')}: ${issue.message}`, { key });
}

function sourceOf(req: Request): string | null {
  return req.socket.remoteAddress ?? null;
}

/** The bearer secret of `Authorization: Bearer <secret>`, undefined without the header, '' for another scheme (no other is accepted). */
function bearer(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match ? match[1] : '';
}

/** Every refusal of a request to the admin API is recorded (admin.refused). */
const RECORDED = { recordRefusal: true };

/** POST bodies are JSON or nothing: a form or text body is refused before it is parsed. */
function requireJson(req: Request, res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if ((req.method === 'POST' || req.method === 'PATCH') && hasBody && !req.is('application/json')) {
    res.status(415).json({
      error: { code: 'content_type_unsupported', message: `request bodies must be application/json, not ${clip(req.get('content-type') ?? 'untyped')}` },
    });
    return;
  }
  next();
}

/** Router errors (an undecodable %-escape in the path) carry a status but no Tollgate code. */
function pathErrors(err: unknown, _req: Request, _res: Response, next: NextFunction): void {
  if (err instanceof URIError) {
    next(invalidInput('path_invalid', 'the request path contains an invalid %-escape'));
    return;
  }
  next(err);
}

/** Who a request authenticated as (a token id, an operator token id or a person, never a secret), once known. */
function whoOf(req: IncomingMessage): Record<string, string | null> {
  const principal = (req as Request).res?.locals.principal as Principal | undefined;
  if (principal?.kind === 'token') return { tokenId: principal.token.id };
  if (principal?.kind === 'person') return { identity: principal.identity };
  if (principal?.kind === 'operator') return principal.operatorTokenId ? { tokenId: principal.operatorTokenId, identity: 'operator' } : { identity: 'operator' };
  return {};
}

/** Headers on every answer: no sniffing, no framing, no referrer, and the console's strict CSP. */
function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set('Content-Security-Policy', CONSOLE_CSP);
  res.set('X-Content-Type-Options', 'nosniff');
  res.set('X-Frame-Options', 'DENY');
  res.set('Referrer-Policy', 'no-referrer');
  res.set('Cross-Origin-Opener-Policy', 'same-origin');
  res.set('Cross-Origin-Resource-Policy', 'same-origin');
  next();
}

const jsonBody = (limit: number) => express.json({ limit, strict: true, type: 'application/json' });

/** Mounts one route of the table: body type, parsing, request shapes, then the handler. */
function mount(router: express.Router, route: Route): void {
  const handlers: RequestHandler[] = [];
  if (route.method === 'post' || route.method === 'patch') handlers.push(requireJson, jsonBody(route.maxBodyBytes ?? MAX_BODY_BYTES));
  handlers.push(async (req, res) => {
    const query = route.query ? parseWith(route.query, req.query, 'query') : undefined;
    const body = route.body ? parseWith(route.body, req.body, 'body') : undefined;
    await route.handle({ req, res, principal: res.locals.principal as Principal, query, body, source: sourceOf(req) });
  });
  router[route.method](route.path, ...handlers);
}

export function createAdminApp({ service, log, enrollment, metrics, readiness, console: consoleAuth, consoleDir, version = '0.0.0', limiter }: AdminAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // No proxy is trusted: the source recorded in the audit trail is the peer address.
  app.set('trust proxy', false);

  const auth = consoleAuth ?? new ConsoleAuth({ deps: service.deps, service, sessions: new SessionStore(30 * 60_000), secure: false });
  let document: unknown;
  const routes = adminRoutes({ service, consoleAuth: auth, enrollment, openapi: () => (document ??= openApiDocument(routes, version)) });

  app.use(observeRequests({ log, ...(metrics ? { metrics } : {}), route: expressRoute, who: whoOf }));
  app.use(securityHeaders);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  if (readiness) {
    app.get('/readyz', async (_req, res) => {
      const report = await readiness();
      if (!report.ready) res.status(503).set('Retry-After', String(report.retryAfterSeconds));
      res.json(report.body);
    });
  }

  const v1 = express.Router();
  v1.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  // The description and the sign-in routes need no credentials ...
  for (const route of routes.filter((r) => r.auth === 'none')) mount(v1, route);
  // ... every other route authenticates first: nobody without a valid token or session gets a body parsed.
  v1.use(async (req, res, next) => {
    const source = sourceOf(req);
    const limited = limiter ? await limiter.checkSource(source) : null;
    if (limited) {
      const answer = rateLimited(limited, 'requests', metrics);
      res.status(answer.status).set(answer.headers).json({ error: { code: answer.reason, message: answer.message } });
      return;
    }
    try {
      const secret = bearer(req);
      res.locals.principal =
        secret !== undefined
          ? await service.authenticate(secret, source, RECORDED)
          : ((await auth.principalOf(req, res, source)) ?? (await service.authenticate(undefined, source, RECORDED)));
    } catch (e) {
      if ((e as { kind?: unknown }).kind === 'unauthenticated') {
        res.set('WWW-Authenticate', 'Bearer realm="tollgate-admin"');
        await limiter?.failed(source);
      }
      throw e;
    }
    next();
  });
  for (const route of routes.filter((r) => r.auth === 'required')) mount(v1, route);
  v1.use(notFoundHandler);

  app.use('/v1', v1);
  app.use(consoleHandler(consoleDir));
  app.use(notFoundHandler);
  app.use(pathErrors);
  app.use(errorHandler(log));
  return app;
}
