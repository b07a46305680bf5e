import { z } from 'zod';
import { forbidden, invalidInput, notFound } from '../errors.js';
import { parseCsr } from '../pki/index.js';
import { checkOverrides, type SotaOverrides } from '../sota-toml.js';
import type { TokenAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import { enrollFromCsr } from './enrollment/csr.js';
import type { Enrolled } from './enrollment/types.js';
import { record } from './events.js';
import { refusalError } from './refusals.js';
import { authenticateSecret } from './standing.js';

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

/**
 * The request body lmp-device-register and fioup send: every value a string, `overrides` being
 * `{"section": {"key": "<TOML value>"}}`. Members a client version adds (use-ostree-server, ...)
 * must be strings too; they are not used.
 */
const requestSchema = z
  .object({
    uuid: z.string().max(64),
    csr: z.string().max(16 * 1024),
    name: z.string().max(128).optional(),
    'hardware-id': z.string().max(128).optional(),
    'sota-config-dir': z.string().max(256).optional(),
    group: z.string().max(128).optional(),
    overrides: z.record(z.string().max(64), z.record(z.string().max(64), z.string().max(1024))).optional(),
  })
  .catchall(z.string().max(1024));

/** What the device asked for its configuration, checked. */
export interface RegistrationSotaRequest {
  sotaConfigDir: string;
  hardwareId: string;
  overrides: SotaOverrides;
}

const PRINTABLE = /^[^\u0000-\u001f\u007f]*$/;

function optionalText(value: string | undefined, name: string): string | null {
  if (value === undefined || value === '') return null;
  if (!PRINTABLE.test(value)) throw invalidInput(`${name}_invalid`, `${name} must not contain control characters`);
  return value;
}

function parseRequest(body: unknown) {
  const parsed = requestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.map(String).join('.') || 'the body';
    throw invalidInput('body_invalid', `${where}: ${issue?.message ?? 'invalid'} (every value is a string; overrides is {"section": {"key": "value"}})`);
  }
  const r = parsed.data;
  if (r.group !== undefined && r.group !== '') throw invalidInput('group_not_supported', 'Tollgate has no device groups; register without a device group');
  const sotaConfigDir = optionalText(r['sota-config-dir'], 'sota-config-dir') ?? '/var/sota';
  if (!sotaConfigDir.startsWith('/')) throw invalidInput('sota-config-dir_invalid', 'sota-config-dir must be an absolute path');
  const overrides = r.overrides ?? {};
  checkOverrides(overrides);
  return {
    uuid: r.uuid,
    csr: r.csr,
    name: optionalText(r.name, 'name'),
    sota: { sotaConfigDir, hardwareId: optionalText(r['hardware-id'], 'hardware-id') ?? '', overrides },
  };
}

/** Records a refused registration; the HTTP layer calls it for what it refuses itself (size, syntax). */
export async function refuseRegistration(deps: AuthorityDeps, token: TokenAuthView | null, source: string | null, reason: string): Promise<void> {
  await record(deps, {
    type: 'device.register_refused',
    actor: token ? `token:${token.id}` : 'anonymous',
    factoryId: token?.factoryId ?? null,
    target: token?.id ?? null,
    reason,
    source,
  });
}

/**
 * The registration token behind `secret` (judged by the authority's one secret authentication),
 * or a 401/403, recorded, saying why it is not one.
 */
export async function authenticateRegistration(deps: AuthorityDeps, secret: string | null, source: string | null): Promise<TokenAuthView> {
  const standing = secret === null ? null : await authenticateSecret(deps, secret, { kinds: ['api'], username: null });
  if (standing?.ok) {
    const { token } = standing;
    if (token.scopes.includes(REGISTRATION_SCOPE)) return token;
    await refuseRegistration(deps, token, source, 'scope_missing');
    throw forbidden('scope_missing', `this token cannot register devices: it lacks ${REGISTRATION_SCOPE}`);
  }
  // Like the admin API, registration does not tell a malformed token from an unknown one.
  const reason = standing === null ? 'registration_token_missing' : standing.reason === 'token_unknown' ? 'registration_token_invalid' : standing.reason;
  await refuseRegistration(deps, standing?.token ?? null, source, reason);
  throw refusalError(reason);
}

/** Enrolls the device the request body describes into the token's factory; refusals are audited. */
export async function registerDevice(
  deps: AuthorityDeps,
  token: TokenAuthView,
  body: unknown,
  source: string | null,
): Promise<{ enrolled: Enrolled; sota: RegistrationSotaRequest }> {
  try {
    const request = parseRequest(body);
    const factory = await deps.store.getFactory(token.factoryId);
    if (!factory) throw notFound('factory_not_found', 'the factory of this registration token no longer exists');
    // The CSR names the device; the body's uuid must agree with it, as the device meant one thing.
    const csr = await parseCsr(request.csr);
    if (csr.subject.commonName !== request.uuid) {
      throw invalidInput('uuid_mismatch', `uuid "${request.uuid.slice(0, 64)}" is not the CSR's CN "${csr.subject.commonName ?? ''}"`);
    }
    const enrolled = await enrollFromCsr(deps, { actor: `token:${token.id}`, source }, factory, { csrPem: request.csr, name: request.name });
    await record(deps, {
      type: 'device.registered',
      actor: `token:${token.id}`,
      factoryId: factory.id,
      target: enrolled.device.uuid,
      source,
      details: { tokenId: token.id, hardwareId: request.sota.hardwareId, fingerprint256: enrolled.device.certificateFingerprint },
    });
    return { enrolled, sota: request.sota };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    await refuseRegistration(deps, token, source, typeof code === 'string' ? code : 'internal_error');
    throw e;
  }
}
