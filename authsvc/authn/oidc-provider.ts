import { createRemoteJWKSet } from 'jose';
import * as oidcClient from 'openid-client';
import type { OidcConfig } from '../../shared/config-accounts.js';
import type { Logger } from '../../shared/log.js';

/**
 * The OIDC provider as the authenticator sees it: its discovery document (cached, refreshed after
 * its max age, fetched once for concurrent callers, and kept while the provider is away) and the
 * key set it names (jose's remote JWKS, with its own cache).
 */

const MAX_DISCOVERY_BYTES = 256 * 1024;

export interface OidcProviderOptions {
  log?: Logger;
  /** Time-out of each discovery and JWKS request (default 5 s). */
  timeoutMs?: number;
  /** How long a discovery document is used before it is fetched again (default 1 h). */
  discoveryMaxAgeMs?: number;
  /** After a failed discovery fetch, the next is not tried before this (default 5 s). */
  retryAfterMs?: number;
}

interface Discovery {
  jwksUri: string;
  fetchedAt: number;
}

/** The provider cannot be asked: its discovery document or keys are unreachable or unusable (503). */
export class ProviderUnavailable extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export function clip(s: string, n = 120): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

async function readCapped(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) throw new Error(`larger than ${max} bytes`);
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new Error(`larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class OidcProvider {
  private discovery: Discovery | undefined;
  private pending: Promise<Discovery> | undefined;
  private lastFailure: { at: number; error: ProviderUnavailable } | undefined;
  private jwks: { uri: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;
  readonly timeoutMs: number;
  private readonly discoveryMaxAgeMs: number;
  private readonly retryAfterMs: number;
  private readonly log: Logger | undefined;

  constructor(
    private readonly config: OidcConfig,
    options: OidcProviderOptions = {},
  ) {
    this.log = options.log;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.discoveryMaxAgeMs = options.discoveryMaxAgeMs ?? 60 * 60_000;
    this.retryAfterMs = options.retryAfterMs ?? 5_000;
  }

  /** The provider's current key set. Throws ProviderUnavailable when its discovery document cannot be had. */
  async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const { jwksUri } = await this.currentDiscovery();
    if (!this.jwks || this.jwks.uri !== jwksUri) {
      this.jwks = { uri: jwksUri, set: createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: this.timeoutMs, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }) };
    }
    return this.jwks.set;
  }

  close(): void {
    this.jwks = undefined;
    this.discovery = undefined;
  }

  /** The discovery document: cached, refreshed after its max age, fetched once for concurrent callers. */
  private async currentDiscovery(): Promise<Discovery> {
    const now = Date.now();
    if (this.discovery && now - this.discovery.fetchedAt < this.discoveryMaxAgeMs) return this.discovery;
    if (this.lastFailure && now - this.lastFailure.at < this.retryAfterMs) {
      // A stale document is still better than none while the provider is away: its keys rarely move.
      if (this.discovery) return this.discovery;
      throw this.lastFailure.error;
    }
    this.pending ??= this.fetchDiscovery()
      .then((d) => {
        this.discovery = d;
        this.lastFailure = undefined;
        return d;
      })
      .catch((e: unknown) => {
        const error = e instanceof ProviderUnavailable ? e : new ProviderUnavailable('oidc_provider_unavailable', 'the OIDC provider cannot be reached');
        this.lastFailure = { at: Date.now(), error };
        this.log?.warn({ issuer: this.config.issuer, reason: error.reason, err: error.message }, 'OIDC discovery failed');
        if (this.discovery) return this.discovery;
        throw error;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /**
   * What openid-client fetches the discovery document with: no redirects, the configured time-out,
   * at most MAX_DISCOVERY_BYTES, and anything but a 200 counted as the provider being away.
   */
  private readonly discoveryFetch = async (url: string, init: RequestInit): Promise<Response> => {
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new ProviderUnavailable('oidc_provider_unavailable', `the OIDC provider's discovery document answered HTTP ${response.status}`);
      }
      text = await readCapped(response, MAX_DISCOVERY_BYTES);
    } catch (e) {
      if (e instanceof ProviderUnavailable) throw e;
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new ProviderUnavailable(
        'oidc_provider_unavailable',
        timedOut ? `the OIDC provider's discovery document did not arrive within ${this.timeoutMs} ms` : `the OIDC provider cannot be reached (${clip(e instanceof Error ? e.message : String(e))})`,
      );
    }
    return new Response(text, { status: 200, headers: response.headers });
  };

  /**
   * The provider's metadata, by openid-client's discovery (OIDC Discovery 4: the well-known URL, a
   * JSON object naming exactly the configured issuer); then a jwks_uri Tollgate accepts.
   */
  private async fetchDiscovery(): Promise<Discovery> {
    const { config } = this;
    let jwksUri: unknown;
    try {
      const configuration = await oidcClient.discovery(new URL(config.issuer), config.audience[0] ?? 'tollgate', undefined, undefined, {
        ...(config.issuer.startsWith('http:') ? { execute: [oidcClient.allowInsecureRequests] } : {}),
        timeout: Math.max(1, Math.ceil(this.timeoutMs / 1000)),
        [oidcClient.customFetch]: this.discoveryFetch,
      });
      jwksUri = configuration.serverMetadata().jwks_uri;
    } catch (e) {
      // openid-client wraps what the fetch threw: the provider being away is found in the causes.
      for (let cause: unknown = e; cause instanceof Error; cause = cause.cause) if (cause instanceof ProviderUnavailable) throw cause;
      // The document arrived but openid-client refused it: not JSON, not an object, another issuer.
      throw new ProviderUnavailable('oidc_discovery_invalid', `the OIDC provider's discovery document is not usable (${clip(e instanceof Error ? e.message : String(e))})`);
    }
    let parsed: URL;
    try {
      if (typeof jwksUri !== 'string') throw new Error('missing');
      parsed = new URL(jwksUri);
    } catch {
      throw new ProviderUnavailable('oidc_discovery_invalid', "the OIDC provider's discovery document has no usable jwks_uri");
    }
    // Keys fetched over plain HTTP are only acceptable when the issuer itself is plain HTTP.
    const allowed = this.config.issuer.startsWith('https:') ? ['https:'] : ['https:', 'http:'];
    if (!allowed.includes(parsed.protocol)) {
      throw new ProviderUnavailable('oidc_discovery_invalid', `the OIDC provider's jwks_uri must use ${allowed.join(' or ')}`);
    }
    return { jwksUri: parsed.href, fetchedAt: Date.now() };
  }
}
