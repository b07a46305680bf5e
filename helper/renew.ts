import crypto from 'node:crypto';
import { promises as fsp } from 'node:fs';
import https from 'node:https';
import { createCsr } from '../shared/pki/issue.js';
import { generateKeyPair, type KeyAlgorithm, type KeyPairPem } from '../shared/pki/keys.js';
import { parseCertificate } from '../shared/pki/x509.js';
import { OID } from '../shared/pki/oids.js';
import { loadDeviceIdentity, type DeviceConfig, type DeviceSettings } from './config.js';
import { noDebug, type Debug } from './debug.js';
import { GatewayError, HelperError } from './errors.js';
import { replaceFile } from './files.js';
import { CONNECT_TIMEOUT_MS, GATEWAY_TIMEOUT_MS } from './gateway-client.js';
import { backupOf, FINAL_REFUSALS, recordFinalRefusal, renewalDueAt } from './renewal-due.js';

export { renewalDueAt } from './renewal-due.js';

/**
 * Certificate renewal on the device: once the certificate has lived about two thirds of its
 * lifetime, a new key and CSR (same subject) go to the gateway's /device/renew over mutual TLS
 * with the current certificate, and the answer replaces the certificate and key files.
 *
 * The moment is jittered by up to 5% of the lifetime either way, so a fleet enrolled on the same
 * day does not renew in the same minute. Files are replaced by rename (never half-written); the
 * previous pair stays next to them as .bak until the new certificate has been used once, since
 * the gateway keeps accepting the old one exactly until then.
 */

const MAX_ANSWER_BYTES = 64 * 1024;

export interface RenewOptions {
  now?: () => number;
  /** Renew whatever the certificate's age. */
  force?: boolean;
  /** Uniform in [0, 1): the jitter source (tests pin it). */
  random?: () => number;
  debug?: Debug;
  timeoutMs?: number;
  /** The device identity as the caller has just read it from `settings`, so it is not read twice. */
  identity?: DeviceConfig;
}

export interface RenewResult {
  renewed: boolean;
  /** When the current certificate becomes due (epoch ms), or when the new one will. */
  dueAt: number;
  notAfter: number;
  fingerprint256: string;
}

/** A renewal's outcome as `tollgate device renew` prints it. */
export function renewalSummary(result: RenewResult) {
  return {
    renewed: result.renewed,
    fingerprint256: result.fingerprint256,
    notAfter: new Date(result.notAfter).toISOString(),
    renewalDueAt: new Date(result.dueAt).toISOString(),
  };
}

function keyAlgorithmOf(key: crypto.KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ec') return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ec-p384' : 'ec-p256';
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 2048;
  return bits >= 4096 ? 'rsa-4096' : bits >= 3072 ? 'rsa-3072' : 'rsa-2048';
}

const bak = backupOf;
const nextKeyFile = (config: DeviceConfig) => `${config.privateKey.path}.next`;

/**
 * The key the next certificate will certify. It is written (0600) next to the current key before
 * the gateway hears of it, and removed once installed, so a renewal that failed half way announces
 * and uses the same key when it is tried again, instead of being locked out by its own announcement.
 */
async function nextKeyPair(config: DeviceConfig, algorithm: KeyAlgorithm): Promise<KeyPairPem> {
  const file = nextKeyFile(config);
  try {
    const privateKeyPem = await fsp.readFile(file, 'utf8');
    return { privateKeyPem, publicKeyPem: crypto.createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString() };
  } catch {
    // None kept (or unreadable): a fresh one.
  }
  const pair = generateKeyPair(algorithm);
  await replaceFile(file, pair.privateKeyPem, 0o600);
  return pair;
}

interface Answer {
  status: number;
  body: string;
}

/** One mutual-TLS request to the gateway with the identity in `creds`. */
function request(config: DeviceConfig, creds: { cert: string; key: string }, method: 'GET' | 'POST' | 'PATCH', path: string, timeoutMs: number, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${config.gateway}${path}`,
      {
        method,
        cert: creds.cert,
        key: creds.key,
        ca: config.caBundle.pem,
        agent: false,
        timeout: Math.min(timeoutMs, CONNECT_TIMEOUT_MS),
        headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
          if (text.length > MAX_ANSWER_BYTES) req.destroy(new GatewayError('bad_response', 'the gateway answer is too large'));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new GatewayError('gateway_timeout', `no answer from ${config.gateway} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function refusal(answer: Answer): GatewayError {
  let code = 'http_error';
  let message = `the gateway answered ${answer.status}`;
  try {
    const e = (JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.code === 'string') code = e.code;
    if (typeof e?.message === 'string') message = `${message}: ${e.message.slice(0, 300)}`;
  } catch {
    // not JSON: the status says enough
  }
  return new GatewayError(code, message, answer.status);
}

/** Uses the current certificate once (GET /device), then drops the .bak pair it made obsolete. */
async function confirm(config: DeviceConfig, timeoutMs: number, debug: Debug): Promise<void> {
  const files = [bak(config.certificate.path), bak(config.privateKey.path)];
  if (!(await fsp.access(files[0] as string).then(() => true, () => false))) return;
  const answer = await request(config, { cert: config.certificate.pem, key: config.privateKey.pem }, 'GET', '/device', timeoutMs);
  if (answer.status !== 200) {
    debug(`renewed certificate not yet confirmed by the gateway (${answer.status}); keeping the .bak files`);
    return;
  }
  await Promise.all(files.map((f) => fsp.rm(f, { force: true })));
  debug('renewed certificate confirmed by the gateway; removed the .bak files');
}

const STALE_LOCK_MS = 2 * 60_000;

/**
 * Serialises renewals of one device identity between processes (a `compose pull` runs one helper
 * per image): two renewals at once would each retire the other's new certificate at the gateway,
 * and could interleave their file replacements. 'busy' when another process is renewing.
 */
async function lockRenewal(certificatePath: string): Promise<(() => Promise<void>) | 'busy'> {
  const lockFile = `${certificatePath}.renew.lock`;
  const token = `${process.pid}.${crypto.randomBytes(8).toString('hex')}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.writeFile(lockFile, token, { flag: 'wx', mode: 0o600 });
      return async () => {
        if ((await fsp.readFile(lockFile, 'utf8').catch(() => '')) === token) await fsp.rm(lockFile, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const stat = await fsp.stat(lockFile).catch(() => null);
      // The holder died mid-renewal: the network calls it guards are capped well below this age.
      if (stat && Date.now() - stat.mtimeMs > STALE_LOCK_MS) await fsp.rm(lockFile, { force: true });
      else return 'busy';
    }
  }
  return 'busy';
}

/**
 * Renews the device certificate if it is due (or `force`), and finishes an earlier renewal whose
 * new certificate was not yet used. Throws HelperError/GatewayError when a due renewal fails.
 */
export async function renewIfDue(settings: DeviceSettings, options: RenewOptions = {}): Promise<RenewResult> {
  const now = (options.now ?? Date.now)();
  const debug = options.debug ?? noDebug;
  const timeoutMs = options.timeoutMs ?? GATEWAY_TIMEOUT_MS;
  const random = (options.random ?? Math.random)();
  const before = options.identity ?? (await loadDeviceIdentity(settings));
  await confirm(before, timeoutMs, debug);
  const due = (config: DeviceConfig) => {
    const cert = parseCertificate(config.certificate.pem);
    return { cert, dueAt: renewalDueAt(cert.notBefore.getTime(), cert.notAfter.getTime(), random) };
  };
  const first = due(before);
  const idle = (d: ReturnType<typeof due>): RenewResult => ({ renewed: false, dueAt: d.dueAt, notAfter: d.cert.notAfter.getTime(), fingerprint256: d.cert.fingerprint256 });
  if (!options.force && now < first.dueAt) {
    debug(`certificate renewal due at ${new Date(first.dueAt).toISOString()}`);
    return idle(first);
  }

  const release = await lockRenewal(before.certificate.path);
  if (release === 'busy') {
    debug('another process is renewing the device certificate');
    return idle(first);
  }
  try {
    // Read again under the lock: the process that held it may just have renewed.
    const config = await loadDeviceIdentity(settings);
    const current = due(config);
    if (current.cert.fingerprint256 !== first.cert.fingerprint256) return idle(current);
    return await renew(settings, config, current.cert, { now, timeoutMs, debug, random });
  } finally {
    await release();
  }
}

async function renew(
  settings: DeviceSettings,
  config: DeviceConfig,
  current: ReturnType<typeof parseCertificate>,
  { now, timeoutMs, debug, random }: { now: number; timeoutMs: number; debug: Debug; random: number },
): Promise<RenewResult> {
  if (current.notAfter.getTime() <= now) {
    throw new HelperError('certificate_expired', `the device certificate expired on ${current.notAfter.toISOString()}; it cannot renew itself, re-enroll the device`);
  }

  const algorithm = keyAlgorithmOf(crypto.createPublicKey(config.privateKey.pem));
  const pair = await nextKeyPair(config, algorithm);
  const subject = { commonName: current.subject.commonName, organizationalUnit: current.subject.organizationalUnit };
  if (subject.commonName === undefined || subject.organizationalUnit === undefined) {
    throw new HelperError('certificate_subject_invalid', 'the device certificate lacks CN or OU; it was not issued for a Tollgate device');
  }
  const csr = await createCsr({ subject: subject as { commonName: string; organizationalUnit: string }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [OID.clientAuth] });
  debug(`renewing certificate ${current.fingerprint256.slice(0, 16)} (${algorithm}) at ${config.gateway}`);
  const identity = { cert: config.certificate.pem, key: config.privateKey.pem };
  const refused = async (answer: Answer): Promise<never> => {
    const e = refusal(answer);
    if (FINAL_REFUSALS.has(e.code)) await recordFinalRefusal(config.certificate.path, current.fingerprint256, e.code, now);
    throw e;
  };
  // The lock first: once the gateway knows the next key, it certifies that key and no other.
  const lock = await request(config, identity, 'PATCH', '/device', timeoutMs, JSON.stringify({ next_pubkey: pair.publicKeyPem }));
  if (lock.status !== 200) await refused(lock);
  const answer = await request(config, identity, 'POST', '/device/renew', timeoutMs, JSON.stringify({ csr }));
  if (answer.status !== 200) await refused(answer);

  let certificate: string;
  try {
    certificate = (JSON.parse(answer.body) as { certificate?: unknown }).certificate as string;
    if (typeof certificate !== 'string') throw new Error('no certificate');
  } catch {
    throw new GatewayError('bad_response', 'the gateway renewal answer holds no certificate', answer.status);
  }
  const issued = parseCertificate(certificate);
  // Never install a certificate that does not match the key just made or names someone else.
  if (!new crypto.X509Certificate(issued.der).checkPrivateKey(crypto.createPrivateKey(pair.privateKeyPem))) {
    throw new GatewayError('bad_response', 'the renewed certificate is not for the new key');
  }
  if (issued.subject.commonName !== subject.commonName) throw new GatewayError('bad_response', 'the renewed certificate names another device');

  // The old pair becomes .bak (key still 0600) before the new pair takes its place.
  await fsp.copyFile(config.privateKey.path, bak(config.privateKey.path));
  await fsp.chmod(bak(config.privateKey.path), 0o600);
  await fsp.copyFile(config.certificate.path, bak(config.certificate.path));
  await replaceFile(config.privateKey.path, pair.privateKeyPem, 0o600);
  await replaceFile(config.certificate.path, issued.pem, 0o644);
  await fsp.rm(nextKeyFile(config), { force: true });
  debug(`installed renewed certificate ${issued.fingerprint256.slice(0, 16)}, valid until ${issued.notAfter.toISOString()}`);

  try {
    await confirm(await loadDeviceIdentity(settings), timeoutMs, debug);
  } catch (e) {
    debug(`could not confirm the renewed certificate yet: ${e instanceof Error ? e.message : String(e)}`);
  }
  const issuedNotAfter = issued.notAfter.getTime();
  return {
    renewed: true,
    dueAt: renewalDueAt(issued.notBefore.getTime(), issuedNotAfter, random),
    notAfter: issuedNotAfter,
    fingerprint256: issued.fingerprint256,
  };
}
