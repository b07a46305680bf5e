import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { LoadedConfig } from './config.js';
import type { KeyStore } from './keystore.js';
import { developmentCaFile, developmentGatewayTls } from './development.js';
import { invalidInput } from './errors.js';
import type { Logger } from './log.js';

/**
 * The gateway's TLS material: its server certificate and key, and the CA bundle devices verify it
 * with. From the files `gateway.tls` names; without them, a start-up error naming the keys, except
 * in development mode (`development: true`, which `tollgate up` sets), where the development PKI
 * (shared/development.ts) is generated instead.
 */

export interface GatewayTlsMaterial {
  certPem: string;
  keyPem: string;
  /** The CA bundle a device uses to verify the gateway (goes into device config files). */
  caFile: string;
  caPem: string;
}

function configuredGatewayTls(config: LoadedConfig): GatewayTlsMaterial | null {
  const { certFile, keyFile, caFile } = config.gateway.tls;
  if (!certFile || !keyFile) return null;
  const base = config.source ? dirname(resolve(config.source)) : process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const read = (path: string, key: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw invalidInput('gateway_tls_unreadable', `${key}: cannot read ${path} (${(e as Error).message})`);
    }
  };
  const bundle = abs(caFile ?? certFile);
  return {
    certPem: read(abs(certFile), 'gateway.tls.certFile'),
    keyPem: read(abs(keyFile), 'gateway.tls.keyFile'),
    caFile: bundle,
    caPem: read(bundle, caFile ? 'gateway.tls.caFile' : 'gateway.tls.certFile'),
  };
}

function missing(): never {
  throw invalidInput(
    'gateway_tls_missing',
    'gateway.tls.certFile and gateway.tls.keyFile are not set (TOLLGATE_GATEWAY_TLS_CERT_FILE, TOLLGATE_GATEWAY_TLS_KEY_FILE): ' +
      'the gateway needs its server certificate and key; `tollgate up` runs a development setup with a generated one',
  );
}

/**
 * What the gateway serves with: the configured files, or in development mode the development PKI
 * (in the database when `keys` are sealed there, so every instance serves one CA's certificate).
 */
export async function gatewayTls(config: LoadedConfig, log?: Logger, keys?: KeyStore): Promise<GatewayTlsMaterial> {
  const configured = configuredGatewayTls(config);
  if (configured) return configured;
  if (config.development) return developmentGatewayTls(config, log, keys);
  return missing();
}

/**
 * The CA bundle the operator's local CLI writes into device files: the configured one, else the
 * development CA once `tollgate up` or `tollgate init` generated it.
 */
export async function gatewayCaForDevices(config: LoadedConfig, keys?: KeyStore): Promise<string> {
  const configured = configuredGatewayTls(config);
  if (configured) return configured.caPem;
  if (config.development || existsSync(developmentCaFile(config))) return (await developmentGatewayTls(config, undefined, keys)).caPem;
  return missing();
}
