/**
 * `GET /hub-creds/`, the gateway's hot route: every credential-helper call on every device asks
 * it. Served with node:http alone, in front of the express app that serves the other routes,
 * because express's routing and response helpers cost a tenth of the route's time on a kept-alive
 * connection (measured in bench/, suite gateway). The answers are byte for byte the ones express
 * gave (shared/http/json.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { identifyDevice, mintDeviceToken, type AuthorityDeps, type IdentificationContext } from '../shared/authority/index.js';
import { isTollgateError } from '../shared/errors.js';
import { errorAnswer, INTERNAL_ERROR_BODY } from '../shared/http/errors.js';
import { sendJson } from '../shared/http/json.js';
import { rateLimited } from '../shared/http/rate-limited.js';
import type { Logger } from '../shared/log.js';
import type { ServiceMetrics } from '../shared/ops/metrics.js';
import type { RequestLimiter } from '../shared/ops/rate-limit.js';
import type { DeviceAuthView } from '../shared/store/types.js';
import { requestCertificate } from './client-certificate.js';
import { presentedClient } from './trust.js';

/** The route's label in metrics and log lines. */
export const HUB_CREDS_ROUTE = '/hub-creds';

/**
 * GET or HEAD on /hub-creds or /hub-creds/, in any letter case and with any query: every request
 * the route matched when express served it (its matching ignores case). Anything else goes to express.
 */
export function isHubCreds(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = (q < 0 ? url : url.slice(0, q)).toLowerCase();
  return path === '/hub-creds/' || path === '/hub-creds';
}

export function sourceOf(req: IncomingMessage): string | null {
  return req.socket.remoteAddress ?? null;
}

/**
 * The 429 for a device or an address that asks too often, or an address that keeps failing
 * authentication; null when the request may go on. Only 401s count as failures: a 403 answers a
 * valid certificate of a known device (revoked, disabled), whose retries the per-device bucket
 * already bounds.
 */
export async function limitVerdict(
  limiter: RequestLimiter,
  metrics: ServiceMetrics | undefined,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<{ status: number; headers: Record<string, string>; code: string; message: string } | null> {
  const source = sourceOf(req);
  const verdict = await limiter.check({ source, subject: requestCertificate(req)?.fingerprint256 ?? null });
  if (verdict) {
    const answer = rateLimited(verdict, 'requests', metrics);
    return { status: answer.status, headers: answer.headers, code: answer.reason, message: answer.message };
  }
  res.once('finish', () => {
    if (res.statusCode === 401) limiter.failed(source).catch((e: unknown) => log.error({ err: e }, 'could not count a failed authentication'));
  });
  return null;
}

/** The device the request's certificate identifies; refusals (recorded by the authority) are thrown. */
export async function identify(deps: AuthorityDeps, req: IncomingMessage, action: IdentificationContext['action']): Promise<DeviceAuthView> {
  return identifyDevice(deps, await presentedClient(deps.store, req, deps.now()), { action, source: sourceOf(req) });
}

export interface HubCredsOptions {
  deps: AuthorityDeps;
  log: Logger;
  metrics?: ServiceMetrics;
  /** Limits (absent: none). */
  limiter?: RequestLimiter;
}

/** The limits, then the device's token minted and the answer written; refusals and failures as JSON errors. */
async function answerHubCreds({ deps, log, metrics, limiter }: HubCredsOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const limited = limiter ? await limitVerdict(limiter, metrics, log, req, res) : null;
    if (limited) {
      sendJson(res, limited.status, { error: { code: limited.code, message: limited.message } }, limited.headers);
      return;
    }
    const device = await identify(deps, req, 'token.refused');
    const minted = await mintDeviceToken(deps, device, sourceOf(req));
    sendJson(
      res,
      200,
      {
        Username: minted.username,
        Secret: minted.secret,
        ExpiresAt: new Date(minted.expiresAt).toISOString(),
        ExpiresIn: Math.floor((minted.expiresAt - deps.now()) / 1000),
      },
      { 'Cache-Control': 'no-store' },
    );
  } catch (e) {
    if (isTollgateError(e)) {
      const answer = errorAnswer(e);
      sendJson(res, answer.status, answer.body, answer.headers);
      return;
    }
    log.error({ err: e, method: req.method, path: req.url?.split('?')[0] }, 'unhandled error');
    sendJson(res, 500, INTERNAL_ERROR_BODY);
  }
}

/** The route as the plain path serves it: the limits, then the mint. */
export function hubCredsHandler(options: HubCredsOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => void answerHubCreds(options, req, res);
}
