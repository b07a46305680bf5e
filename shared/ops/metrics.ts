import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeviceState } from '../store/types.js';

/**
 * The Prometheus metrics every Tollgate service exposes. Each service gets its own Registry rather
 * than prom-client's global one, so that several services (or several tests) can live in one
 * process without their series colliding.
 */

export type ServiceName = 'gateway' | 'authsvc' | 'admin';

export interface ActiveKeyInfo {
  kid: string;
  alg: string;
}

export interface MetricsSources {
  /** Read on every scrape (one aggregate query). */
  countDevicesByState?: () => Promise<Record<DeviceState, number>>;
  /** The key that signs registry tokens now, if any. */
  activeSigningKey?: () => ActiveKeyInfo | null | Promise<ActiveKeyInfo | null>;
}

export interface ServiceMetrics {
  service: ServiceName;
  registry: Registry;
  tokensIssued: Counter<'service' | 'kind'>;
  tokensRefused: Counter<'service' | 'reason'>;
  tlsClientCertFailures: Counter<'reason'>;
  httpDuration: Histogram<'service' | 'route' | 'method' | 'status'>;
  /** Exposition text and its content type, for a /metrics handler. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Buckets around the realm's few-millisecond answers and the gateway's TLS-bound ones. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(service: ServiceName, sources: MetricsSources = {}): ServiceMetrics {
  const registry = new Registry();
  const tokensIssued = new Counter({
    name: 'tollgate_tokens_issued_total',
    help: 'Credentials issued, by kind (device: /hub-creds/ secret; registry: registry JWT; refresh; api).',
    labelNames: ['service', 'kind'] as const,
    registers: [registry],
  });
  const tokensRefused = new Counter({
    name: 'tollgate_tokens_refused_total',
    help: 'Credential requests refused, by stable reason code.',
    labelNames: ['service', 'reason'] as const,
    registers: [registry],
  });
  const tlsClientCertFailures = new Counter({
    name: 'tollgate_tls_client_cert_failures_total',
    help: 'Device requests or TLS handshakes refused because of the client certificate.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'tollgate_http_request_duration_seconds',
    help: 'HTTP request duration, by route pattern (never the raw path, to bound cardinality).',
    labelNames: ['service', 'route', 'method', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const { countDevicesByState, activeSigningKey } = sources;
  if (countDevicesByState) {
    new Gauge({
      name: 'tollgate_devices',
      help: 'Enrolled devices by state (read from the store at scrape time).',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const counts = await countDevicesByState();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }
  if (activeSigningKey) {
    new Gauge({
      name: 'tollgate_signing_key_info',
      help: 'Always 1, labelled with the active token-signing key.',
      labelNames: ['kid', 'alg'] as const,
      registers: [registry],
      async collect() {
        // Reset first: after a rotation only the new key may carry a series.
        this.reset();
        const key = await activeSigningKey();
        if (key) this.set({ kid: key.kid, alg: key.alg }, 1);
      },
    });
  }
  return {
    service,
    registry,
    tokensIssued,
    tokensRefused,
    tlsClientCertFailures,
    httpDuration,
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
