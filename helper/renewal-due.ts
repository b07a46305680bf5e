import { promises as fsp } from 'node:fs';
import type { DeviceConfig } from './config.js';
import { replaceFile } from './files.js';

/**
 * Whether the device certificate needs the renewal machinery now, decided from what the helper
 * has already read (the certificate's dates) and two file checks. Every `get` asks this; only when
 * the answer is yes does it load helper/renew.ts, which brings the key generation, the CSR builder
 * and their libraries: a `get` on a certificate that is not due loads none of them.
 */

const RENEW_AT = 2 / 3;
const JITTER = 0.05;

/** When a certificate valid from `notBefore` to `notAfter` should be renewed; `random` in [0, 1). */
export function renewalDueAt(notBefore: number, notAfter: number, random: number): number {
  const lifetime = notAfter - notBefore;
  return notBefore + lifetime * (RENEW_AT + (random * 2 - 1) * JITTER);
}

/** The previous certificate or key, kept after a renewal until the new certificate has been used once. */
export const backupOf = (file: string) => `${file}.bak`;

/** Where a refusal of renewal that holds for the whole life of a certificate is remembered. */
export const refusalFileOf = (certificatePath: string) => `${certificatePath}.renewal-refused`;

/**
 * The gateway's renewal refusals that no later attempt with the same certificate can change: a
 * test certificate is never renewed, and a certificate from a factory's own CA is renewed by the
 * factory. Asking again on every `get` would cost a key, a CSR and two gateway calls each time.
 */
export const FINAL_REFUSALS: ReadonlySet<string> = new Set(['test_certificate_not_renewable', 'reenroll_not_supported']);

export interface RenewalState {
  dueAt: number;
  due: boolean;
  /** A renewal left the previous pair as .bak: the new certificate still has to be used once. */
  unconfirmed: boolean;
  /** The code of a final refusal recorded for this very certificate, or null. */
  refused: string | null;
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
}

/** The final refusal recorded for the certificate with `fingerprint256`, if any. */
async function recordedRefusal(certificatePath: string, fingerprint256: string): Promise<string | null> {
  try {
    const parsed = JSON.parse(await fsp.readFile(refusalFileOf(certificatePath), 'utf8')) as { fingerprint256?: unknown; code?: unknown };
    // A refusal of another (earlier) certificate says nothing about this one.
    return parsed.fingerprint256 === fingerprint256 && typeof parsed.code === 'string' ? parsed.code : null;
  } catch {
    return null;
  }
}

/** Records that the gateway refused to renew this certificate for good (best effort: a failure only means asking again). */
export async function recordFinalRefusal(certificatePath: string, fingerprint256: string, code: string, at: number): Promise<void> {
  await replaceFile(refusalFileOf(certificatePath), `${JSON.stringify({ fingerprint256, code, at: new Date(at).toISOString() })}\n`, 0o644).catch(() => undefined);
}

export async function renewalState(identity: DeviceConfig, now: number, random: number): Promise<RenewalState> {
  const { certificate } = identity;
  const dueAt = renewalDueAt(certificate.notBefore.getTime(), certificate.notAfter.getTime(), random);
  const due = now >= dueAt;
  return {
    dueAt,
    due,
    unconfirmed: await exists(backupOf(certificate.path)),
    refused: due ? await recordedRefusal(certificate.path, certificate.fingerprint256) : null,
  };
}
