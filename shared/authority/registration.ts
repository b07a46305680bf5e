import { forbidden, invalidInput, notFound, unauthenticated } from '../errors.js';
import { parseCsr } from '../pki/index.js';
import { hashSecret, secretKind } from '../secrets.js';
import type { TokenAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import { enrollFromCsr, type Enrolled } from './devices.js';

/**
 * Devices that register themselves, the way lmp-device-register and fioup do: the device makes its
 * key and CSR and presents a factory's registration token; the factory's online CA signs.
 *
 * A registration token is an API token with the scope `devices:register` and nothing else, bound to
 * one factory, always expiring, usable by any number of devices (it is baked into provisioning,
 * not handed to one device). Every use, granted or refused, leaves an audit record naming the token.
 */

export const REGISTRATION_SCOPE = 'devices:register';
export const REGISTRATION_TOKEN_MAX_DAYS = 365;

/** Creation rules for a token carrying `devices:register` (createApiToken asks). */
export function checkRegistrationTokenRequest(scopes: readonly string[], days: unknown): void {
  if (!scopes.includes(REGISTRATION_SCOPE)) return;
  if (scopes.length > 1) {
    throw invalidInput('registration_scope_alone', `${REGISTRATION_SCOPE} is given alone: a registration token travels with device images and must carry nothing else`);
  }
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > REGISTRATION_TOKEN_MAX_DAYS) {
    throw invalidInput('registration_token_expiry_required', `a registration token must expire: give days between 1 and ${REGISTRATION_TOKEN_MAX_DAYS}`);
  }
}

/** Registering devices is part of writing them: a grantor holding devices:write may hand it out. */
export function grantsRegistration(grantorScopes: readonly string[]): boolean {
  return grantorScopes.includes('devices:write');
}

export interface RegistrationRequest {
  uuid: string;
  csr: string;
  name: string | null;
  hardwareId: string | null;
}

async function refuse(deps: AuthorityDeps, token: TokenAuthView | null, source: string | null, reason: string): Promise<void> {
  await deps.store.appendAudit({
    actor: token ? `token:${token.id}` : 'anonymous',
    action: 'device.register_refused',
    outcome: 'denied',
    factoryId: token?.factoryId ?? null,
    target: token?.id ?? null,
    reason,
    source,
  });
}

/** The registration token behind `secret`, or a 401/403 (audited) saying why it is not one. */
export async function authenticateRegistration(deps: AuthorityDeps, secret: string | null, source: string | null): Promise<TokenAuthView> {
  if (secret === null) {
    await refuse(deps, null, source, 'registration_token_missing');
    throw unauthenticated('registration_token_missing', 'send the registration token in an OSF-TOKEN header (or Authorization: Bearer)');
  }
  const token = secretKind(secret) === 'api' ? await deps.store.findTokenBySecretHash(hashSecret(secret)) : null;
  if (!token || token.kind !== 'api') {
    await refuse(deps, null, source, 'registration_token_invalid');
    throw unauthenticated('registration_token_invalid', 'the registration token is not valid');
  }
  if (token.revokedAt !== null) {
    await refuse(deps, token, source, 'token_revoked');
    throw unauthenticated('token_revoked', 'the registration token has been revoked');
  }
  if (token.expiresAt !== null && token.expiresAt <= deps.now()) {
    await refuse(deps, token, source, 'token_expired');
    throw unauthenticated('token_expired', 'the registration token has expired');
  }
  if (!token.scopes.includes(REGISTRATION_SCOPE)) {
    await refuse(deps, token, source, 'scope_missing');
    throw forbidden('scope_missing', `this token cannot register devices: it lacks ${REGISTRATION_SCOPE}`);
  }
  return token;
}

/** Enrolls the device the request describes into the token's factory; refusals are audited. */
export async function registerDevice(deps: AuthorityDeps, token: TokenAuthView, request: RegistrationRequest, source: string | null): Promise<Enrolled> {
  try {
    const factory = await deps.store.getFactory(token.factoryId);
    if (!factory) throw notFound('factory_not_found', 'the factory of this registration token no longer exists');
    // The CSR names the device; the body's uuid must agree with it, as the device meant one thing.
    const csr = await parseCsr(request.csr);
    if (csr.subject.commonName !== request.uuid) {
      throw invalidInput('uuid_mismatch', `uuid "${request.uuid}" is not the CSR's CN "${csr.subject.commonName ?? ''}"`);
    }
    const enrolled = await enrollFromCsr(deps, { actor: `token:${token.id}`, source }, factory, { csrPem: request.csr, name: request.name });
    await deps.store.appendAudit({
      actor: `token:${token.id}`,
      action: 'device.registered',
      outcome: 'success',
      factoryId: factory.id,
      target: enrolled.device.uuid,
      source,
      details: { tokenId: token.id, hardwareId: request.hardwareId, fingerprint256: enrolled.device.certificateFingerprint },
    });
    return enrolled;
  } catch (e) {
    await refuse(deps, token, source, (e as { code?: unknown }).code === undefined ? 'internal_error' : String((e as { code: unknown }).code));
    throw e;
  }
}
