import { createHash, randomBytes } from 'node:crypto';
import { invalidInput, isTollgateError } from '../errors.js';
import { isIssuedBy, parseCertificate, type CertificateInfo } from '../pki/index.js';
import type { Factory } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit } from './events.js';

/**
 * Proof of possession for external CAs: before a CA certificate is registered, whoever registers
 * it must show they hold its key, by having it sign a verification certificate whose CN is a
 * fresh, single-use registration code. Registering a CA certificate copied from somewhere else
 * would otherwise let anyone claim that CA's devices for their factory.
 */

export const REGISTRATION_CODE_TTL_MS = 3_600_000;

const hashCode = (code: string) => createHash('sha256').update(code, 'utf8').digest('hex');

export async function createCaRegistrationCode(deps: AuthorityDeps, actor: Actor, factory: Factory): Promise<{ code: string; expiresAt: string }> {
  // 144 random bits, base64url: fits a CN (at most 64 characters) with room to spare.
  const code = randomBytes(18).toString('base64url');
  const now = deps.now();
  const expiresAt = now + REGISTRATION_CODE_TTL_MS;
  await commit(deps, { type: 'ca.registration_code_created', ...by(actor), factoryId: factory.id, target: factory.name }, (audit) =>
    deps.store.addCaRegistrationCode({ codeHash: hashCode(code), factoryId: factory.id, createdAt: now, expiresAt }, audit),
  );
  return { code, expiresAt: new Date(expiresAt).toISOString() };
}

function popFailed(message: string): never {
  throw invalidInput('proof_of_possession_failed', message);
}

/**
 * Checks that `verificationPem` carries one of the factory's live registration codes as its CN and
 * was signed by `ca`'s key, then uses the code up. Throws proof_of_possession_failed otherwise.
 */
export async function verifyProofOfPossession(deps: AuthorityDeps, factory: Factory, ca: CertificateInfo, verificationPem: unknown): Promise<void> {
  if (typeof verificationPem !== 'string') {
    popFailed('a verificationCertificate is required: a certificate whose CN is a registration code, signed by the CA key');
  }
  let verification: CertificateInfo;
  try {
    verification = parseCertificate(verificationPem);
  } catch (e) {
    if (isTollgateError(e)) popFailed(`the verification certificate is unreadable: ${e.message}`);
    throw e;
  }
  const code = verification.subject.commonName;
  const now = deps.now();
  if (code === undefined || !(await deps.store.hasCaRegistrationCode(factory.id, hashCode(code), now))) {
    popFailed(`the verification certificate's CN is not a live registration code of factory "${factory.name}" (codes are single use and expire after an hour)`);
  }
  if (!isIssuedBy(verification, ca)) popFailed('the verification certificate was not signed by the key of the CA being registered');
  // Used up only now, so a failed attempt (wrong signer) does not burn the code.
  if (!(await deps.store.consumeCaRegistrationCode(factory.id, hashCode(code), now))) {
    popFailed('the registration code was used by another request');
  }
}
