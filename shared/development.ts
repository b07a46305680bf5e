import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFactory, createOnlineCa, createSigningKey, type AuthorityDeps } from './authority/index.js';
import type { LoadedConfig } from './config.js';
import { isTollgateError } from './errors.js';
import { writeFileAtomic } from './files.js';
import type { GatewayTlsMaterial } from './gateway-tls.js';
import { keyRefFor, type KeyStore } from './keystore.js';
import type { Logger } from './log.js';
import { generateKeyPair, issueCertificate, parseCertificate } from './pki/index.js';

/**
 * The development PKI: everything `npm start` (`tollgate up`) and `tollgate init` need on a fresh
 * clone, generated once under the PKI directory and reused after that. Only development mode
 * reaches it (shared/gateway-tls.ts); in production the operator points `gateway.tls` at real
 * files and creates factories and CAs explicitly.
 */

const DAY = 86_400_000;

function stillGood(certPath: string, names: readonly string[]): boolean {
  if (!existsSync(certPath)) return false;
  try {
    const cert = parseCertificate(readFileSync(certPath, 'utf8'));
    if (cert.notAfter.getTime() - Date.now() < 7 * DAY) return false;
    const san = cert.x509.subjectAltName ?? '';
    return names.every((n) => san.includes(n));
  } catch {
    return false;
  }
}

/** A new self-signed development gateway CA. */
async function newDevelopmentCa(): Promise<{ certPem: string; keyPem: string }> {
  const pair = generateKeyPair('ec-p256');
  const now = Date.now();
  const certPem = await issueCertificate({
    profile: 'root-ca',
    subject: { commonName: 'Tollgate development gateway CA', organization: 'Tollgate' },
    publicKey: createPublicKey(pair.publicKeyPem),
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + 5 * 365 * DAY),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  return { certPem, keyPem: pair.privateKeyPem };
}

/** The key store entry holding the development gateway CA, certificate and key together. */
const DEV_CA_KEY = 'dev-gateway-ca';
const CERT_THEN_KEY = /^(-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?)([\s\S]+)$/;

/**
 * The development gateway CA kept in the database (keys sealed with the key-encryption key), so
 * every gateway instance serves a certificate devices trust without a shared disk. Instances
 * starting together may both create one: the first stored wins, the other reads it.
 */
async function sharedDevelopmentCa(keys: KeyStore): Promise<{ certPem: string; keyPem: string }> {
  const ref = keyRefFor(DEV_CA_KEY);
  const read = async () => {
    const m = CERT_THEN_KEY.exec(await keys.get(ref));
    if (!m) throw new Error(`the stored development gateway CA ${ref} is not a certificate followed by its key`);
    return { certPem: m[1]!, keyPem: m[2]! };
  };
  try {
    return await read();
  } catch (e) {
    if (!(isTollgateError(e) && e.code === 'key_missing')) throw e;
  }
  const ca = await newDevelopmentCa();
  try {
    await keys.put(DEV_CA_KEY, `${ca.certPem.trimEnd()}\n${ca.keyPem}`);
    return ca;
  } catch (e) {
    if (isTollgateError(e) && e.code === 'key_exists') return read();
    throw e;
  }
}

/** A server certificate for this instance's names, from the development CA (kept in memory only). */
async function developmentServerCertificate(config: LoadedConfig, ca: { certPem: string; keyPem: string }): Promise<{ certPem: string; keyPem: string }> {
  const { names, ips } = serverNames(config);
  const pair = generateKeyPair('ec-p256');
  const now = Date.now();
  const certPem = await issueCertificate({
    profile: 'tls-server',
    subject: { commonName: names[0]!, organization: 'Tollgate' },
    publicKey: createPublicKey(pair.publicKeyPem),
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + 365 * DAY),
    issuer: { certificatePem: ca.certPem, privateKeyPem: ca.keyPem },
    dnsNames: names,
    ipAddresses: ips,
  });
  return { certPem, keyPem: pair.privateKeyPem };
}

function serverNames(config: LoadedConfig): { names: string[]; ips: string[] } {
  const names = ['localhost', ...config.gateway.serverNames];
  const ips = ['127.0.0.1', '::1'];
  const host = config.gateway.listen.host;
  if (/^[0-9.]+$/.test(host) && host !== '0.0.0.0' && !ips.includes(host)) ips.push(host);
  else if (!/^[0-9.:]+$/.test(host) && !names.includes(host)) names.push(host);
  return { names, ips };
}

/** Where the development gateway CA lives (whether or not it was generated yet). */
export function developmentCaFile(config: Pick<LoadedConfig, 'pkiDir'>): string {
  return join(config.pkiDir, 'tls', 'ca.pem');
}

/**
 * Generates (once) a development gateway CA and a server certificate for the configured names:
 * under pkiDir with file keys; kept in the database with sealed keys (several instances, no shared
 * disk), its CA certificate then also written to pkiDir/tls/ca.pem for the device files.
 */
export async function developmentGatewayTls(config: LoadedConfig, log?: Logger, keys?: KeyStore): Promise<GatewayTlsMaterial> {
  const dir = join(config.pkiDir, 'tls');
  const caFile = developmentCaFile(config);
  if (keys?.kind === 'database') {
    const ca = await sharedDevelopmentCa(keys);
    if (!existsSync(caFile) || readFileSync(caFile, 'utf8') !== ca.certPem) writeFileAtomic(caFile, ca.certPem, 0o644);
    return { ...(await developmentServerCertificate(config, ca)), caFile, caPem: ca.certPem };
  }
  const caKeyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  if (!existsSync(caFile) || !existsSync(caKeyFile) || !stillGood(caFile, [])) {
    const ca = await newDevelopmentCa();
    writeFileAtomic(caKeyFile, ca.keyPem, 0o600);
    writeFileAtomic(caFile, ca.certPem, 0o644);
    log?.info({ caFile }, 'generated a development gateway CA');
  }
  const { names, ips } = serverNames(config);
  if (!stillGood(certFile, [...names.map((n) => `DNS:${n}`), ...ips.filter((i) => !i.includes(':')).map((i) => `IP Address:${i}`)])) {
    const server = await developmentServerCertificate(config, { certPem: readFileSync(caFile, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8') });
    writeFileAtomic(keyFile, server.keyPem, 0o600);
    writeFileAtomic(certFile, server.certPem, 0o644);
    log?.info({ certFile, names, ips }, 'generated a development gateway server certificate');
  }
  return {
    certPem: readFileSync(certFile, 'utf8'),
    keyPem: readFileSync(keyFile, 'utf8'),
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
  };
}

/**
 * On an empty store: an active token-signing key, and a `demo` factory with an online device CA.
 * On a store that has them, nothing.
 */
export async function seedDevelopmentStore(deps: AuthorityDeps, log?: Logger): Promise<void> {
  const actor = { actor: 'system' };
  const keys = await deps.store.listSigningKeys();
  if (!keys.some((k) => k.status === 'active')) {
    const key = await createSigningKey(deps, actor, { activate: true });
    log?.info({ kid: key.kid }, 'generated a token-signing key');
  }
  if ((await deps.store.listFactories()).length === 0) {
    const factory = await createFactory(deps, actor, 'demo');
    const ca = await createOnlineCa(deps, actor, factory);
    log?.info({ factory: factory.name, caId: ca.id }, 'created the demo factory with an online device CA');
  }
}
