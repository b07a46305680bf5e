import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { DeviceConfig } from './config.js';
import { noDebug, type Debug } from './debug.js';
import { GatewayError, oneLine } from './errors.js';

/**
 * `GET <gateway>/hub-creds/` over mutual TLS: the device proves who it is with its certificate and
 * receives a short-lived registry token. Every failure becomes a GatewayError whose message tells
 * the operator what to look at (network, trust, the device's standing at the gateway).
 */

export const GATEWAY_TIMEOUT_MS = 15_000;
export const CONNECT_TIMEOUT_MS = 10_000;
/** The answer is a few hundred bytes; a large body is not the gateway talking. */
const MAX_BODY_BYTES = 64 * 1024;
/** A rate-limit or unavailability answer asking for at most this wait is retried once. */
const MAX_RETRY_AFTER_S = 5;

export interface HubCreds {
  username: string;
  secret: string;
  /** Epoch milliseconds by this device's clock (computed from ExpiresIn, so clock skew cannot shorten it). */
  expiresAt: number;
  lifetimeMs: number;
}

export interface FetchOptions {
  /** Total budget for the call, retries included. */
  timeoutMs?: number;
  /** Budget for the TCP connection alone, so an unroutable gateway fails fast. */
  connectTimeoutMs?: number;
  debug?: Debug;
  now?: () => number;
}

const credsSchema = z.object({
  Username: z.string().min(1),
  Secret: z.string().min(1),
  ExpiresAt: z.string().optional(),
  ExpiresIn: z.number().nonnegative().optional(),
});

const errorSchema = z.object({ error: z.object({ code: z.string().min(1), message: z.string() }) });

/** Text from the gateway, made safe for a one-line message. */
function seconds(ms: number): string {
  return String(Math.round((ms / 1000) * 10) / 10);
}

function shown(text: string, max = 300): string {
  const line = oneLine(text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ''));
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** Trust failures reported by OpenSSL while verifying the gateway's certificate. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
]);

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENETDOWN: 'network is down',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset by the gateway',
  EPIPE: 'connection closed by the gateway',
  EADDRNOTAVAIL: 'address not available',
};

/** The operator's view of a failed request. */
export function describeRequestError(e: NodeJS.ErrnoException & { reason?: string }, config: DeviceConfig): GatewayError {
  const gw = config.gateway;
  const code = e.code ?? '';
  if (UNTRUSTED.has(code)) {
    return new GatewayError('gateway_untrusted', `gateway certificate not trusted by caBundle ${config.caBundle.path} (${code})`);
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    const state = code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not yet valid';
    return new GatewayError('gateway_untrusted', `gateway ${gw} certificate ${state} (${code}); check the device clock`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new GatewayError('gateway_untrusted', `gateway certificate is not issued for ${new URL(gw).hostname} (${code})`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') {
    const why = code === 'EAI_AGAIN' ? 'DNS lookup failed, try again' : 'host name not found';
    return new GatewayError('gateway_unreachable', `gateway ${gw} unreachable (${why}: ${new URL(gw).hostname})`);
  }
  const network = NETWORK[code];
  if (network !== undefined) return new GatewayError('gateway_unreachable', `gateway ${gw} unreachable (${network})`);
  if (/ALERT/.test(code)) {
    // The far end aborted the handshake: typically a proxy in front of the gateway refusing the device certificate.
    return new GatewayError('tls_handshake_failed', `gateway ${gw} refused the TLS handshake; is the device certificate still accepted? (${code})`);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return new GatewayError('tls_handshake_failed', `gateway ${gw} does not speak TLS on this port (${code})`);
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return new GatewayError('tls_handshake_failed', `TLS handshake with gateway ${gw} failed (${code})`);
  }
  return new GatewayError('gateway_unreachable', `gateway ${gw} unreachable (${code || shown(e.message, 120)})`);
}

/** The operator's view of a non-200 answer. */
function describeRefusal(res: IncomingMessage, body: string, config: DeviceConfig, now: number): GatewayError {
  const status = res.statusCode ?? 0;
  let parsed: z.infer<typeof errorSchema> | undefined;
  try {
    const result = errorSchema.safeParse(JSON.parse(body));
    if (result.success) parsed = result.data;
  } catch {
    // Not JSON: a proxy's HTML page, most likely; described by status below.
  }
  const retryAfter = parseRetryAfter(res.headers['retry-after'], now);
  const detail = parsed ? `${shown(parsed.error.message)} (${shown(parsed.error.code, 64)})` : undefined;
  const code = parsed?.error.code ?? `http_${status}`;
  if (status === 401) {
    return new GatewayError(code, `the gateway did not accept this device's certificate: ${detail ?? `HTTP 401 (no details)`}`, status);
  }
  if (status === 403) return new GatewayError(code, `the gateway refused this device: ${detail ?? 'HTTP 403 (no details)'}`, status);
  if (status === 429) {
    const wait = retryAfter !== undefined ? `; retry in ${retryAfter} s` : '';
    return new GatewayError(parsed?.error.code ?? 'rate_limited', `the gateway is rate-limiting this device${wait}${detail ? `: ${detail}` : ''}`, status, retryAfter);
  }
  if (status === 404) {
    // Whatever the body says, the likely cause is a config pointing at the wrong service or path.
    return new GatewayError(code, `gateway ${config.gateway} has no /hub-creds/ (HTTP 404${parsed ? `, ${shown(parsed.error.code, 64)}` : ''}); is "gateway" the Tollgate device gateway URL?`, status);
  }
  const reason = detail ?? `HTTP ${status}${res.statusMessage ? ` ${shown(res.statusMessage, 60)}` : ''}`;
  return new GatewayError(code, `gateway ${config.gateway} answered ${parsed ? `HTTP ${status}: ` : ''}${reason}`, status, retryAfter);
}

function interpretCreds(body: string, config: DeviceConfig, now: number): HubCreds {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new GatewayError('bad_response', `gateway ${config.gateway} answered 200 with something that is not JSON`);
  }
  const parsed = credsSchema.safeParse(json);
  if (!parsed.success) {
    throw new GatewayError('bad_response', `gateway ${config.gateway} answered 200 without Username and Secret`);
  }
  const { Username, Secret, ExpiresAt, ExpiresIn } = parsed.data;
  let lifetimeMs = 0;
  if (ExpiresIn !== undefined) lifetimeMs = ExpiresIn * 1000;
  else if (ExpiresAt !== undefined && !Number.isNaN(Date.parse(ExpiresAt))) lifetimeMs = Math.max(0, Date.parse(ExpiresAt) - now);
  return { username: Username, secret: Secret, expiresAt: now + lifetimeMs, lifetimeMs };
}

interface Limits {
  deadline: number;
  totalMs: number;
  connectMs: number;
}

function requestOnce(config: DeviceConfig, limits: Limits, debug: Debug, now: () => number): Promise<HubCreds> {
  const url = new URL(config.hubCredsUrl ?? new URL('hub-creds/', `${config.gateway}/`).toString());
  return new Promise<HubCreds>((resolve, reject) => {
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    let totalTimer: NodeJS.Timeout | undefined;
    const finish = (error: GatewayError | undefined, value?: HubCreds) => {
      if (settled) return;
      settled = true;
      clearTimeout(totalTimer);
      clearTimeout(connectTimer);
      if (error) {
        req.destroy();
        reject(error);
      } else {
        resolve(value as HubCreds);
      }
    };

    const req = https.request(url, {
      method: 'GET',
      agent: false,
      cert: config.certificate.pem,
      key: config.privateKey.pem,
      ca: config.caBundle.pem,
      // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in a device's environment cannot turn it off.
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      headers: { accept: 'application/json', 'user-agent': 'docker-credential-tollgate' },
    });

    totalTimer = setTimeout(() => {
      finish(new GatewayError('gateway_timeout', `gateway ${config.gateway} did not answer within ${seconds(limits.totalMs)} s`));
    }, Math.max(0, limits.deadline - Date.now()));

    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      connectTimer = setTimeout(() => {
        finish(new GatewayError('gateway_unreachable', `gateway ${config.gateway} unreachable (no connection within ${seconds(limits.connectMs)} s)`));
      }, limits.connectMs);
      socket.once('connect', () => clearTimeout(connectTimer));
    });

    req.on('error', (e: NodeJS.ErrnoException) => {
      debug(`request error ${e.code ?? ''} ${shown(e.message, 200)}`);
      finish(describeRequestError(e, config));
    });

    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          finish(new GatewayError('bad_response', `gateway ${config.gateway} answered with more than ${MAX_BODY_BYTES / 1024} KiB`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (e: NodeJS.ErrnoException) => finish(describeRequestError(e, config)));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        debug(`gateway answered HTTP ${res.statusCode ?? '?'} (${size} bytes)`);
        try {
          if (res.statusCode === 200) finish(undefined, interpretCreds(body, config, now()));
          else finish(describeRefusal(res, body, config, now()));
        } catch (e) {
          finish(e instanceof GatewayError ? e : new GatewayError('bad_response', `gateway ${config.gateway} answered something unreadable`));
        }
      });
    });

    req.end();
  });
}

/**
 * Asks the gateway for registry credentials with the device identity in `config`. A 429/503 that
 * asks to retry within a few seconds is retried once, inside the same total timeout.
 */
export async function fetchHubCreds(config: DeviceConfig, options: FetchOptions = {}): Promise<HubCreds> {
  const debug = options.debug ?? noDebug;
  const now = options.now ?? Date.now;
  const totalMs = options.timeoutMs ?? GATEWAY_TIMEOUT_MS;
  const limits: Limits = { deadline: Date.now() + totalMs, totalMs, connectMs: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS };
  debug(`GET ${config.hubCredsUrl ?? `${config.gateway}/hub-creds/`} as certificate ${config.certificate.fingerprint256.slice(0, 16)}...`);
  try {
    return await requestOnce(config, limits, debug, now);
  } catch (e) {
    const wait = e instanceof GatewayError ? e.retryAfter : undefined;
    const retryable = e instanceof GatewayError && (e.status === 429 || e.status === 503);
    if (!retryable || wait === undefined || wait > MAX_RETRY_AFTER_S || Date.now() + wait * 1000 + 1000 > limits.deadline) throw e;
    debug(`gateway asked to retry after ${wait} s; retrying once`);
    await new Promise((r) => setTimeout(r, wait * 1000));
    return requestOnce(config, limits, debug, now);
  }
}
