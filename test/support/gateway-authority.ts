import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminApp } from '../../admin/app.js';
import { AdminService } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import type { AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import { isTollgateError } from '../../shared/errors.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { generateKeyPair, issueCertificate } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/**
 * What the hardening suites attack: an authority on a data directory of its own (a real SQLite
 * file), its admin service and HTTP app, and a gateway on a real mutual-TLS listener.
 */
export interface GatewayAuthority {
  config: LoadedConfig;
  deps: AuthorityDeps & { store: SqlStore };
  service: AdminService;
  app: ReturnType<typeof createAdminApp>;
  material: GatewayTlsMaterial;
  gateway: RunningGateway;
  close(): Promise<void>;
}

/** `env`: configuration overrides as environment variables (TOLLGATE_...). */
export async function startGatewayAuthority(name: string, env: Record<string, string> = {}): Promise<GatewayAuthority> {
  const dir = mkdtempSync(join(tmpdir(), `tollgate-${name}-`));
  const config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0', ...env }, cwd: dir });
  const deps = openAuthority(config);
  const service = new AdminService(deps);
  const app = createAdminApp({ service, log: createLogger('admin', 'silent'), enrollment: { gatewayCa: '', gateway: 'https://gateway.test' } });
  const material = await developmentGatewayTls(config);
  const gateway = await startGateway({ config, deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log: createLogger('gateway', 'silent') });
  return {
    config,
    deps,
    service,
    app,
    material,
    gateway,
    async close() {
      await gateway.close();
      await deps.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The code `p` is refused with, or 'accepted'. */
export async function refusalCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isTollgateError(e)) return e.code;
    throw e;
  }
  return 'accepted';
}

const DAY = 86_400_000;

/** A CA certificate and its key, as a factory keeps them (Tollgate never sees the key). */
export interface Issuer {
  certificatePem: string;
  privateKeyPem: string;
}

/** A factory's own self-signed device CA. */
export async function factoryCa(subject: { commonName: string; organizationalUnit?: string }, days = 365): Promise<Issuer> {
  const pair = generateKeyPair('ec-p256');
  const certificatePem = await issueCertificate({
    profile: 'device-ca',
    subject,
    publicKey: createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + days * DAY),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  return { certificatePem, privateKeyPem: pair.privateKeyPem };
}

/** Registers `ca` with `factory` as an operator would, proving possession of its key. */
export async function registerCa(service: AdminService, factory: string, ca: Issuer) {
  const operator = { kind: 'operator' } as const;
  const { code } = await service.createCaRegistrationCode(operator, factory);
  const verification = await issueCertificate({
    profile: 'ca-verification',
    subject: { commonName: code },
    publicKey: createPublicKey(generateKeyPair('ec-p256').publicKeyPem),
    notAfter: new Date(Date.now() + DAY),
    issuer: ca,
  });
  return service.addExternalCa(operator, factory, ca.certificatePem, verification);
}
