/**
 * authsvc's HTTP server: bare node:http, because the realm is the hot path of every pull and a
 * framework's routing and middleware cost several times the realm's own work. This file only moves
 * bytes: it routes, enforces size and media-type limits, and hands the realm plain data.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AuthorityDeps } from '../shared/authority/index.js';
import { realmUrl as configuredRealmUrl, type Config } from '../shared/config.js';
import { closeGracefully, hardenServer, listen } from '../shared/http/server.js';
import type { Logger } from '../shared/log.js';
import { serviceEvents } from '../shared/ops/event-subscribers.js';
import { observeRequests } from '../shared/ops/http-observe.js';
import { createMetrics, type ServiceMetrics } from '../shared/ops/metrics.js';
import { scheduleMaintenance } from '../shared/ops/purge.js';
import { sharedStateFor, type SharedState } from '../shared/store/shared-state.js';
import { RequestLimiter } from '../shared/ops/rate-limit.js';
import { assessReadiness, certificateCheck, storeCheck } from '../shared/ops/readiness.js';
import { rateLimited } from '../shared/http/rate-limited.js';
import { Acl } from './acl.js';
import { accountSettings, closeAccountSettings } from './authn/index.js';
import { parseBasicAuthorization, type ParsedCredentials } from './credentials.js';
import { jwksJson } from './jwks.js';
import { Keyring } from './keyring.js';
import { createRealm, realmSettings, renderRealm, type Realm, type RealmResponse } from './realm.js';
import { methodNotAllowed } from './realm/request.js';
import type { Dialect, InvalidRequest, RealmOutcome } from './realm/types.js';

/** A token request form is a few hundred bytes; anything near this is not one. */
export const MAX_BODY_BYTES = 8 * 1024;
/** The scope parser caps scopes at 8 KiB too; the whole query may not exceed that either. */
export const MAX_QUERY_BYTES = 8 * 1024;

const JWKS_PATHS = new Set(['/jwks.json', '/.well-known/jwks.json']);
// No /metrics here: metrics have their own listener (shared/ops/metrics-listener.ts).
const FIXED_ROUTES = new Set([...JWKS_PATHS, '/healthz', '/readyz']);
const FORM = 'application/x-www-form-urlencoded';

export interface AuthsvcHandlerOptions {
  realmPath: string;
  /** Returns the realm, or null while it is not ready (before the port is known). */
  realm: () => Realm | null;
  keyring: Keyring;
  store: Pick<AuthorityDeps['store'], 'ping'>;
  log: Logger;
  metrics?: ServiceMetrics;
  /** Limits on the realm route (absent: none). */
  limiter?: RequestLimiter;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const NO_STORE = { 'Cache-Control': 'no-store' };

function reply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'Content-Type': 'application/json', ...NO_STORE, ...headers }, body: JSON.stringify(body) };
}

/** The error shape of Tollgate's other APIs, for every route but the realm. */
function apiError(status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  return reply(status, { error: { code, message } }, headers);
}

/** A request the server refuses on the realm route before the realm sees it, in the realm's dialects. */
function realmInvalid(dialect: Dialect, status: number, reason: string, message: string, headers: Record<string, string> = {}): RealmOutcome {
  const invalid: InvalidRequest = { status, reason, message, registryCode: 'INVALID_REQUEST', oauthError: 'invalid_request', headers };
  return { kind: 'invalid', dialect, ...invalid };
}

function send(res: ServerResponse, r: Reply | RealmResponse): void {
  if (res.headersSent || res.destroyed) return;
  // Sized, not chunked: a client capping what it reads (aktualizr-lite: 1024 bytes) sees the size first.
  res.writeHead(r.status, { 'X-Content-Type-Options': 'nosniff', ...r.headers, 'Content-Length': String(Buffer.byteLength(r.body)) });
  res.end(r.body);
}

/** Path and query of the request target, or null if it cannot be read. */
function target(raw: string): { path: string; query: string } | null {
  if (raw.startsWith('/')) {
    const q = raw.indexOf('?');
    return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
  }
  // absolute-form (RFC 9112 section 3.2.2), as a proxy would send it.
  try {
    const url = new URL(raw);
    return { path: url.pathname, query: url.search.slice(1) };
  } catch {
    return null;
  }
}

/** True for `application/x-www-form-urlencoded`, bare or with a UTF-8 charset. */
function isUtf8Form(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';');
  if ((type ?? '').trim().toLowerCase() !== FORM) return false;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (name === 'charset' && value !== 'utf-8' && value !== 'utf8') return false;
  }
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

type Body = { ok: true; text: string } | { ok: false; refused: RealmOutcome };

/** Reads the body up to MAX_BODY_BYTES; beyond it answers 413 without reading the rest. */
function readBody(req: IncomingMessage): Promise<Body> {
  return new Promise((resolve) => {
    const tooLarge = (): Body => ({
      ok: false,
      // The unread rest of the body makes the connection unusable for another request.
      refused: realmInvalid('oauth', 413, 'body_too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`, { Connection: 'close' }),
    });
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) return resolve(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (b: Body) => {
      if (done) return;
      done = true;
      resolve(b);
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        finish(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      let text: string;
      try {
        text = utf8.decode(Buffer.concat(chunks));
      } catch {
        finish({ ok: false, refused: realmInvalid('oauth', 400, 'body_not_utf8', 'the request body is not valid UTF-8') });
        return;
      }
      finish({ ok: true, text });
    });
    const aborted = () => finish({ ok: false, refused: realmInvalid('oauth', 400, 'body_aborted', 'the request body was not received completely') });
    req.on('error', aborted);
    // 'close' also follows a normal 'end', when the body is already settled and this is a no-op.
    req.on('close', aborted);
  });
}

const basics = new WeakMap<IncomingMessage, ParsedCredentials>();

/**
 * The Authorization header read as HTTP Basic, once per request: for the limiter and the log line
 * (the username: a device UUID, an API token id, an account; never the password) and for the realm.
 */
function basicOf(req: IncomingMessage): ParsedCredentials {
  let parsed = basics.get(req);
  if (parsed === undefined) {
    parsed = parseBasicAuthorization(req.headers.authorization);
    basics.set(req, parsed);
  }
  return parsed;
}

function basicUsername(req: IncomingMessage): string | null {
  const parsed = basicOf(req);
  return parsed.ok ? parsed.credentials.username : null;
}

/** A refusal of the client's making: refused credentials, or a request refused as it stands (4xx). */
function countsAsFailure(outcome: RealmOutcome): boolean {
  return outcome.kind === 'refused' || (outcome.kind === 'invalid' && outcome.status >= 400 && outcome.status < 500);
}

export function createAuthsvcHandler(options: AuthsvcHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { realmPath, keyring, store, log, metrics, limiter } = options;
  const routeOf = (req: IncomingMessage): string => {
    const path = target(req.url ?? '/')?.path ?? '';
    if (path === realmPath) return realmPath;
    return FIXED_ROUTES.has(path) ? path : 'unmatched';
  };
  const observe = observeRequests({
    log,
    ...(metrics ? { metrics } : {}),
    route: routeOf,
    who: (req): Record<string, string | null> => {
      const subject = basicUsername(req);
      return subject === null ? {} : { subject };
    },
  });
  let jwksCache: { version: number; body: string } | null = null;

  const jwks = async (): Promise<Reply> => {
    if (!jwksCache || jwksCache.version !== keyring.version) {
      const version = keyring.version;
      jwksCache = { version, body: await jwksJson(keyring.trusted) };
    }
    // Public keys: caches may keep them briefly; rotation publishes a key well before using it.
    return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=60' }, body: jwksCache.body };
  };

  // Ready when a token can be answered: a store that takes writes, and an active key whose certificate is in date.
  const readiness = async (): Promise<Reply> => {
    const key = keyring.active;
    const report = await assessReadiness(
      {
        store: storeCheck(store),
        signingKey: () => (key ? certificateCheck(() => key.certificateDer)() : 'missing'),
      },
      key ? { kid: key.kid } : {},
    );
    if (report.ready) return reply(200, report.body);
    return reply(503, { ...report.body, ...(key ? {} : { problem: keyring.problem }) }, { 'Retry-After': String(report.retryAfterSeconds) });
  };

  /**
   * The realm route: the source's limits and the body here, every answer a realm outcome (and the
   * realm URL its challenge names). The subject's limit is the realm's to apply, once the
   * credentials proved who it is (limitSubject). Every refusal, before or after the credentials
   * were checked, counts toward the source's back-off.
   */
  async function realmRoute(req: IncomingMessage, method: string, query: string): Promise<[RealmOutcome, string]> {
    const source = req.socket.remoteAddress ?? null;
    const answer = await realmAnswer(req, method, query, source);
    const [outcome] = answer;
    if (countsAsFailure(outcome)) limiter?.failed(source).catch((e: unknown) => log.error({ err: e }, 'could not count a failed authentication'));
    // Refused credentials are counted as their refusal events are published; a refused request here.
    if (outcome.kind === 'invalid' && outcome.status < 500) metrics?.tokensRefused.inc({ service: metrics.service, reason: outcome.reason });
    return answer;
  }

  async function realmAnswer(req: IncomingMessage, method: string, query: string, source: string | null): Promise<[RealmOutcome, string]> {
    const dialect: Dialect = method === 'POST' ? 'oauth' : 'registry';
    if (method !== 'GET' && method !== 'POST') return [{ kind: 'invalid', dialect, ...methodNotAllowed(method) }, ''];
    if (query.length > MAX_QUERY_BYTES) return [realmInvalid(dialect, 414, 'query_too_large', `the query string is longer than ${MAX_QUERY_BYTES} bytes`), ''];
    const realm = options.realm();
    if (!realm) return [realmInvalid(dialect, 503, 'starting', 'the realm is starting', { 'Retry-After': '1' }), ''];
    const verdict = limiter ? await limiter.checkSource(source) : null;
    if (verdict) return [{ kind: 'rate_limited', dialect, answer: rateLimited(verdict, 'token requests', metrics) }, realm.realmUrl];
    let body: string | undefined;
    if (method === 'POST') {
      if (!isUtf8Form(req.headers['content-type'])) return [realmInvalid(dialect, 415, 'media_type_unsupported', `the request body must be ${FORM} (UTF-8)`), realm.realmUrl];
      const read = await readBody(req);
      if (!read.ok) return [read.refused, realm.realmUrl];
      body = read.text;
    }
    const outcome = await realm({ method, query: new URLSearchParams(query), basic: basicOf(req), ...(body !== undefined ? { body } : {}), source });
    return [outcome, realm.realmUrl];
  }

  async function route(req: IncomingMessage): Promise<Reply | RealmResponse> {
    const method = req.method ?? 'GET';
    const t = target(req.url ?? '/');
    if (!t) return apiError(400, 'request_target_invalid', 'the request target is not a valid path');
    const { path, query } = t;

    if (path === realmPath) return renderRealm(...(await realmRoute(req, method, query)));

    if (!FIXED_ROUTES.has(path)) return apiError(404, 'route_not_found', `no route ${path}`);
    if (method !== 'GET' && method !== 'HEAD') {
      return apiError(405, 'method_not_allowed', `${method} is not allowed here; use GET`, { Allow: 'GET, HEAD' });
    }
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/readyz') return readiness();
    return jwks();
  }

  return (req, res) => {
    observe(req, res);
    route(req).then(
      (r) => send(res, r),
      (e: unknown) => {
        log.error({ err: e, method: req.method }, 'request failed');
        send(res, apiError(500, 'internal_error', 'internal error'));
      },
    );
  };
}

export interface AuthsvcOptions {
  /** With `source` (the file it came from), relative paths in it resolve against that file's directory. */
  config: Config & { source?: string | null };
  deps: AuthorityDeps;
  log: Logger;
  /** How often to look for signing-key changes made by other processes without a change feed (ms). Default 2000. */
  keyringPollMs?: number;
  /** Limit counters and replay memory (default: in the database on PostgreSQL, else in memory). */
  shared?: SharedState;
}

export interface RunningAuthsvc {
  server: Server;
  port: number;
  /** The realm URL registries must name (the configured public URL, or the bound address). */
  realmUrl: string;
  keyring: Keyring;
  metrics: ServiceMetrics;
  close(): Promise<void>;
}

export async function startAuthsvc({ config, deps: rawDeps, log, keyringPollMs, shared = sharedStateFor(rawDeps.store) }: AuthsvcOptions): Promise<RunningAuthsvc> {
  // Accounts first: a broken ACL or an unreadable certificate stops start-up before anything binds.
  const accounts = await accountSettings(config, log, { replay: shared.replay });
  const acl = new Acl(accounts.acl);
  for (const warning of acl.warnings()) log.warn(warning);
  const keyring = await Keyring.open({ store: rawDeps.store, keys: rawDeps.keys, log, ...(keyringPollMs !== undefined ? { pollMs: keyringPollMs } : {}) });
  const metrics = createMetrics('authsvc', {
    countDevicesByState: () => rawDeps.store.countDevicesByState(),
    activeSigningKey: () => {
      const key = keyring.active;
      return key ? { kid: key.kid, alg: key.alg } : null;
    },
  });
  const deps: AuthorityDeps = { ...rawDeps, events: serviceEvents({ log, metrics }) };
  const limiter = new RequestLimiter(config.limits, { now: deps.now, state: shared.limits, scope: 'realm' });
  let realm: Realm | null = null;
  const server = createServer(
    createAuthsvcHandler({ realmPath: config.authsvc.realmPath, realm: () => realm, keyring, store: deps.store, log, metrics, limiter }),
  );
  hardenServer(server);
  const { host } = config.authsvc.listen;
  let port: number;
  try {
    port = await listen(server, config.authsvc.listen.port, host);
  } catch (e) {
    keyring.close();
    await closeAccountSettings(accounts);
    throw e;
  }
  // With port 0 the realm URL is only known now; a configured public URL always wins.
  const url = configuredRealmUrl({ ...config, authsvc: { ...config.authsvc, listen: { host, port } } });
  realm = createRealm({
    settings: realmSettings(config, url),
    deps,
    keyring,
    log,
    limitSubject: async (subject) => {
      const verdict = await limiter.checkSubject(subject);
      return verdict ? rateLimited(verdict, 'token requests', metrics) : null;
    },
    accounts: {
      authenticators: accounts.authenticators,
      acl,
      ...(accounts.authorizationHook ? { authorizationHook: accounts.authorizationHook } : {}),
    },
  });
  const stopPurge = scheduleMaintenance({ config, store: rawDeps.store, shared, now: deps.now, log, service: 'authsvc' });
  log.info({ host, port, realm: url, kid: keyring.active?.kid ?? null }, 'authsvc listening');
  return {
    server,
    port,
    realmUrl: url,
    keyring,
    metrics,
    async close() {
      stopPurge();
      keyring.close();
      await closeGracefully(server);
      await closeAccountSettings(accounts);
    },
  };
}
