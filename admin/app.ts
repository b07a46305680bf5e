import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { TollgateError, invalidInput, unauthenticated } from '../shared/errors.js';
import { errorHandler, notFoundHandler } from '../shared/http/errors.js';
import type { Logger } from '../shared/log.js';
import { expressRoute, observeRequests } from '../shared/ops/http-observe.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import type { CaState, DeviceState } from '../shared/store/types.js';
import type { AdminService, Principal } from './service.js';

/**
 * The admin HTTP API: a thin JSON skin over AdminService, which holds every authorization rule and
 * audits every mutation. This layer only authenticates the bearer token, checks request shapes and
 * maps results to status codes.
 */

export interface AdminAppOptions {
  service: AdminService;
  log: Logger;
  /** Request durations go here when set (the admin API shares the gateway's process and registry). */
  metrics?: ServiceMetrics;
  /** What an enrollment answer tells the device about the gateway. */
  enrollment: {
    /** PEM bundle devices verify the gateway's server certificate with. */
    gatewayCa: string;
    /** The gateway URL devices use (gatewayUrl(config)). */
    gateway: string;
  };
}

/** Body size cap: a CSR or certificate is a few KiB; anything near this limit is not one. */
export const MAX_BODY_BYTES = 64 * 1024;

// ---- request shapes -------------------------------------------------------------------------
// Strict objects, so a misspelt key is refused by name instead of silently ignored (a typo in
// `days` must not enroll a device for the default lifetime). Value rules (lifetimes, names,
// scopes) stay in the authority, which the CLI's local mode shares.

const optionalInt = z.number().int().optional();
const optionalText = z.string().nullable().optional();

const onlineCaBody = z.object({ kind: z.literal('online'), commonName: optionalText, days: optionalInt }).strict();
const externalCaBody = z.object({ kind: z.literal('external'), certificate: z.string(), verificationCertificate: z.string().optional() }).strict();
const settingsBody = z
  .object({
    jit: z.string().optional(),
    certMaxDays: z.number().int().nullable().optional(),
    testCertMaxHours: z.number().int().nullable().optional(),
    keyTypes: z.array(z.string()).nullable().optional(),
  })
  .strict();
const stateChangeBody = z.object({ reason: optionalText }).strict();
const enrollBody = z
  .object({
    csr: z.string().optional(),
    certificate: z.string().optional(),
    name: optionalText,
    caId: z.string().optional(),
    days: optionalInt,
    test: z.boolean().optional(),
    hours: optionalInt,
    minutes: optionalInt,
  })
  .strict();
const createTokenBody = z.object({ scopes: z.array(z.string()), description: optionalText, days: optionalInt }).strict();
const listDevicesQuery = z.object({ state: z.string().optional(), limit: z.string().optional(), after: z.string().optional() }).strict();
const auditQuery = z.object({ after: z.string().optional(), limit: z.string().optional(), target: z.string().optional() }).strict();

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const clip = (s: string) => (s.length > 64 ? `${s.slice(0, 64)}...` : s);

/**
 * Parses `value` or throws invalid_input naming the first offending key: `body_unknown_key` /
 * `query_unknown_key` for keys the route does not take, `<key>_invalid` for a wrong type.
 */
function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query'): z.infer<S> {
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
  const key = String(issue.path[0]);
  throw invalidInput(`${snake(key)}_invalid`, `${issue.path.join('.')}: ${issue.message}`, { key });
}

function caBody(body: unknown) {
  const kind = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { kind?: unknown }).kind : undefined;
  if (kind === 'online') return parseWith(onlineCaBody, body, 'body');
  if (kind === 'external') return parseWith(externalCaBody, body, 'body');
  throw invalidInput('kind_invalid', 'kind must be "online" (Tollgate generates and holds the key) or "external" (certificate of a CA the factory holds)');
}

// ---- request plumbing -----------------------------------------------------------------------

const STATE_OF_ACTION: Record<string, DeviceState & CaState> = { disable: 'disabled', enable: 'active', revoke: 'revoked' };

function stateOf(action: string): DeviceState & CaState {
  const state = Object.hasOwn(STATE_OF_ACTION, action) ? STATE_OF_ACTION[action] : undefined;
  if (!state) throw new TollgateError('not_found', 'route_not_found', `no action "${clip(action)}"; expected disable, enable or revoke`);
  return state;
}

function sourceOf(req: Request): string | null {
  return req.socket.remoteAddress ?? null;
}

/** The bearer secret of `Authorization: Bearer <secret>`, or undefined. */
function bearer(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  if (!match) throw unauthenticated('token_required', 'use Authorization: Bearer tga_... (no other scheme is accepted)');
  return match[1];
}

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

function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

/** The API token a request authenticated with (its id, never its secret), once known. */
function tokenOf(req: IncomingMessage): Record<string, string | null> {
  const principal = (req as Request).res?.locals.principal as Principal | undefined;
  return principal?.kind === 'token' ? { tokenId: principal.token.id } : {};
}

export function createAdminApp({ service, log, enrollment, metrics }: AdminAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // No proxy is trusted: the source recorded in the audit trail is the peer address.
  app.set('trust proxy', false);

  app.use(observeRequests({ log, ...(metrics ? { metrics } : {}), route: expressRoute, who: tokenOf }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const v1 = express.Router();
  // Authentication comes first: nobody without a valid token gets a body parsed.
  v1.use(async (req, res, next) => {
    try {
      res.locals.principal = await service.authenticate(bearer(req), sourceOf(req));
    } catch (e) {
      res.set('WWW-Authenticate', 'Bearer realm="tollgate-admin"');
      throw e;
    }
    next();
  });
  v1.use(requireJson);
  v1.use(express.json({ limit: MAX_BODY_BYTES, strict: true, type: 'application/json' }));
  v1.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  v1.get('/whoami', async (_req, res) => {
    res.json(await service.whoami(principalOf(res)));
  });

  v1.get('/factories/:factory', async (req, res) => {
    res.json(await service.getFactory(principalOf(res), req.params.factory));
  });

  v1.get('/factories/:factory/settings', async (req, res) => {
    res.json(await service.getFactorySettings(principalOf(res), req.params.factory));
  });
  v1.patch('/factories/:factory/settings', async (req, res) => {
    const body = parseWith(settingsBody, req.body, 'body');
    res.json(await service.updateFactorySettings(principalOf(res), req.params.factory, body));
  });

  // ---- CAs ----
  v1.get('/factories/:factory/cas', async (req, res) => {
    res.json(await service.listCas(principalOf(res), req.params.factory));
  });
  v1.post('/factories/:factory/cas', async (req, res) => {
    const body = caBody(req.body);
    const p = principalOf(res);
    const ca =
      body.kind === 'online'
        ? await service.createOnlineCa(p, req.params.factory, { commonName: body.commonName, days: body.days })
        : await service.addExternalCa(p, req.params.factory, body.certificate, body.verificationCertificate);
    res.status(201).json(ca);
  });
  v1.post('/factories/:factory/cas/registration-code', async (req, res) => {
    res.status(201).json(await service.createCaRegistrationCode(principalOf(res), req.params.factory));
  });
  v1.get('/factories/:factory/cas/:id', async (req, res) => {
    res.json(await service.getCa(principalOf(res), req.params.factory, req.params.id));
  });
  v1.post('/factories/:factory/cas/:id/:action', async (req, res) => {
    const state = stateOf(req.params.action);
    const { reason } = parseWith(stateChangeBody, req.body, 'body');
    res.json(await service.setCaState(principalOf(res), req.params.factory, req.params.id, state, reason));
  });

  // ---- devices ----
  v1.get('/factories/:factory/devices', async (req, res) => {
    const query = parseWith(listDevicesQuery, req.query, 'query');
    res.json(await service.listDevices(principalOf(res), req.params.factory, query));
  });
  v1.post('/factories/:factory/devices', async (req, res) => {
    const body = parseWith(enrollBody, req.body, 'body');
    const result = await service.enroll(principalOf(res), req.params.factory, body);
    res.status(201).json({ ...result, gatewayCa: enrollment.gatewayCa, gateway: enrollment.gateway });
  });
  v1.get('/factories/:factory/devices/:uuid', async (req, res) => {
    res.json(await service.getDevice(principalOf(res), req.params.factory, req.params.uuid));
  });
  v1.delete('/factories/:factory/devices/:uuid', async (req, res) => {
    await service.deleteDevice(principalOf(res), req.params.factory, req.params.uuid);
    res.status(204).end();
  });
  v1.post('/factories/:factory/devices/:uuid/:action', async (req, res) => {
    const state = stateOf(req.params.action);
    const { reason } = parseWith(stateChangeBody, req.body, 'body');
    res.json(await service.setDeviceState(principalOf(res), req.params.factory, req.params.uuid, state, reason));
  });

  // ---- tokens and audit ----
  v1.get('/factories/:factory/tokens', async (req, res) => {
    res.json(await service.listTokens(principalOf(res), req.params.factory));
  });
  v1.post('/factories/:factory/tokens', async (req, res) => {
    const body = parseWith(createTokenBody, req.body, 'body');
    res.status(201).json(await service.createToken(principalOf(res), req.params.factory, body));
  });
  v1.delete('/factories/:factory/tokens/:id', async (req, res) => {
    await service.revokeToken(principalOf(res), req.params.factory, req.params.id);
    res.status(204).end();
  });
  v1.get('/factories/:factory/audit', async (req, res) => {
    const query = parseWith(auditQuery, req.query, 'query');
    res.json(await service.audit(principalOf(res), req.params.factory, query));
  });

  app.use('/v1', v1);
  app.use(notFoundHandler);
  app.use(pathErrors);
  app.use(errorHandler(log));
  return app;
}
