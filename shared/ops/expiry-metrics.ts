import { X509Certificate } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import type { Store } from '../store/types.js';

/**
 * Gauges for what expires, so an alert fires weeks before a certificate lapses instead of when
 * devices stop pulling: device certificates expiring soon (a count per factory), and the expiry
 * time of every device CA, token-signing certificate and (in the gateway process) the gateway's
 * own server certificate. Expiry times are Unix seconds, the Prometheus convention: alert on
 * `tollgate_..._expiry_timestamp_seconds - time() < 14 * 86400`.
 */

const DAY_MS = 86_400_000;
/** Scrapes come every 15-60 s; the device count is a scan of the devices table, so it is reused this long. */
const DEVICE_COUNT_MAX_AGE_MS = 60_000;

export interface ExpirySources {
  store: Pick<Store, 'listFactories' | 'listDeviceCas' | 'listSigningKeys' | 'countDevicesExpiring'>;
  /** Device certificates expiring within this many days are counted. */
  withinDays: number;
  now?: () => number;
  /** The gateway's server certificate (PEM), in the gateway process only. */
  gatewayCertificatePem?: string;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

export function registerExpiryGauges(registry: Registry, sources: ExpirySources): void {
  const { store, withinDays } = sources;
  const now = sources.now ?? Date.now;
  let deviceCounts: { at: number; counts: Map<string, number> } | null = null;

  new Gauge({
    name: 'tollgate_device_certificates_expiring',
    help: `Active devices whose certificate expires within ${withinDays} days (metrics.expiringWithinDays), by factory.`,
    labelNames: ['factory'] as const,
    registers: [registry],
    async collect() {
      const at = now();
      if (!deviceCounts || at - deviceCounts.at > DEVICE_COUNT_MAX_AGE_MS || at < deviceCounts.at) {
        const [factories, byId] = await Promise.all([store.listFactories(), store.countDevicesExpiring(at, at + withinDays * DAY_MS)]);
        deviceCounts = { at, counts: new Map(factories.map((f) => [f.name, byId[f.id] ?? 0])) };
      }
      this.reset();
      for (const [factory, n] of deviceCounts.counts) this.set({ factory }, n);
    },
  });

  new Gauge({
    name: 'tollgate_ca_certificate_expiry_timestamp_seconds',
    help: 'When each device CA certificate expires (Unix seconds); revoked CAs are left out.',
    labelNames: ['factory', 'ca', 'kind', 'state'] as const,
    registers: [registry],
    async collect() {
      const [factories, cas] = await Promise.all([store.listFactories(), store.listDeviceCas()]);
      const names = new Map(factories.map((f) => [f.id, f.name]));
      this.reset();
      for (const ca of cas) {
        if (ca.state === 'revoked') continue;
        this.set({ factory: names.get(ca.factoryId) ?? ca.factoryId, ca: ca.id, kind: ca.kind, state: ca.state }, seconds(ca.notAfter));
      }
    },
  });

  new Gauge({
    name: 'tollgate_signing_certificate_expiry_timestamp_seconds',
    help: 'When the certificate of each active or trusted token-signing key expires (Unix seconds).',
    labelNames: ['kid', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const key of await store.listSigningKeys()) {
        if (key.status === 'retired') continue;
        this.set({ kid: key.kid, status: key.status }, seconds(Date.parse(new X509Certificate(key.certificatePem).validTo)));
      }
    },
  });

  const gatewayPem = sources.gatewayCertificatePem;
  if (gatewayPem !== undefined) {
    const notAfter = seconds(Date.parse(new X509Certificate(gatewayPem).validTo));
    new Gauge({
      name: 'tollgate_gateway_certificate_expiry_timestamp_seconds',
      help: "When the gateway's TLS server certificate expires (Unix seconds).",
      registers: [registry],
      collect() {
        this.set(notAfter);
      },
    });
  }
}
