import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFactory, createOnlineCa, createSigningKey, type AuthorityDeps } from './authority/index.js';
import type { LoadedConfig } from './config.js';
import { writeFileAtomic } from './files.js';
import type { GatewayTlsMaterial } from './gateway-tls.js';
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

/** Where the development gateway CA lives (whether or not it was generated yet). */
export function developmentCaFile(config: Pick<LoadedConfig, 'pkiDir'>): string {
  return join(config.pkiDir, 'tls', 'ca.pem');
}

/** Generates (once) a development gateway CA and a server certificate for the configured names. */
export async function developmentGatewayTls(config: LoadedConfig, log?: Logger): Promise<GatewayTlsMaterial> {
  const dir = join(config.pkiDir, 'tls');
  const caFile = developmentCaFile(config);
  const caKeyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  if (!existsSync(caFile) || !existsSync(caKeyFile) || !stillGood(caFile, [])) {
    const pair = generateKeyPair('ec-p256');
    const now = Date.now();
    const caPem = await issueCertificate({
      profile: 'root-ca',
      subject: { commonName: 'Tollgate development gateway CA', organization: 'Tollgate' },
      publicKey: createPublicKey(pair.publicKeyPem),
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + 5 * 365 * DAY),
      selfSignPrivateKeyPem: pair.privateKeyPem,
    });
    writeFileAtomic(caKeyFile, pair.privateKeyPem, 0o600);
    writeFileAtomic(caFile, caPem, 0o644);
    log?.info({ caFile }, 'generated a development gateway CA');
  }
  const names = ['localhost', ...config.gateway.serverNames];
  const ips = ['127.0.0.1', '::1'];
  const host = config.gateway.listen.host;
  if (/^[0-9.]+$/.test(host) && host !== '0.0.0.0' && !ips.includes(host)) ips.push(host);
  else if (!/^[0-9.:]+$/.test(host) && !names.includes(host)) names.push(host);
  if (!stillGood(certFile, [...names.map((n) => `DNS:${n}`), ...ips.filter((i) => !i.includes(':')).map((i) => `IP Address:${i}`)])) {
    const pair = generateKeyPair('ec-p256');
    const now = Date.now();
    const pem = await issueCertificate({
      profile: 'tls-server',
      subject: { commonName: names[0]!, organization: 'Tollgate' },
      publicKey: createPublicKey(pair.publicKeyPem),
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + 365 * DAY),
      issuer: { certificatePem: readFileSync(caFile, 'utf8'), privateKeyPem: readFileSync(caKeyFile, 'utf8') },
      dnsNames: names,
      ipAddresses: ips,
    });
    writeFileAtomic(keyFile, pair.privateKeyPem, 0o600);
    writeFileAtomic(certFile, pem, 0o644);
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
