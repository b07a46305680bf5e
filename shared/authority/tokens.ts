import { forbidden, invalidInput, notFound } from '../errors.js';
import { newSecret, newTokenId } from '../secrets.js';
import type { CaState, DeviceAuthView, DeviceState, Factory, NewTokenRecord, TokenRecord } from '../store/types.js';
import { by, type Actor, type AuthorityDeps } from './context.js';
import { commit } from './events.js';
import { assertLabel } from './names.js';
import { checkRegistrationTokenRequest, grantsRegistration, REGISTRATION_SCOPE } from './registration.js';

/**
 * A device's tokens live only while the device is active: any other state (disabled, pending,
 * revoked) ends them in the same transaction, so no token of such a device ever works again.
 */
export function deviceTokensOutlive(state: DeviceState): boolean {
  return state === 'active';
}

/** A revoked CA cuts off every device under it, tokens included; disabling one only stops new enrollments. */
export function deviceTokensOutliveCa(state: CaState): boolean {
  return state !== 'revoked';
}

/**
 * Scopes an API token can carry. `devices:*` and `tokens:write` are for the admin API (`devices:test`
 * only issues short-lived test device certificates, for CI; `devices:register` only lets devices
 * register themselves at the gateway, see registration.ts);
 * `containers:*` and `catalog:read` are what the realm turns into registry access.
 */
export const API_TOKEN_SCOPES = [
  'devices:read',
  'devices:write',
  'devices:test',
  'devices:register',
  'containers:read',
  'containers:write',
  'containers:delete',
  'tokens:write',
  'catalog:read',
] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

/**
 * The registry's catalog lists every repository of every factory: it cannot be filtered per
 * factory, so only the operator (local CLI) may create a token that can read it.
 */
const OPERATOR_ONLY_SCOPES: readonly string[] = ['catalog:read'];

const MAX_TTL_DAYS = 3650;

export function assertScopes(value: unknown): ApiTokenScope[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > API_TOKEN_SCOPES.length) {
    throw invalidInput('scopes_invalid', `scopes must be a non-empty list of: ${API_TOKEN_SCOPES.join(', ')}`);
  }
  const out = new Set<ApiTokenScope>();
  for (const s of value) {
    if (typeof s !== 'string' || !(API_TOKEN_SCOPES as readonly string[]).includes(s)) {
      throw invalidInput('scope_unknown', `unknown scope ${JSON.stringify(s)}; known scopes: ${API_TOKEN_SCOPES.join(', ')}`);
    }
    out.add(s as ApiTokenScope);
  }
  return [...out];
}

export interface NewApiTokenRequest {
  scopes?: unknown;
  description?: unknown;
  /** Lifetime in days; omitted = no expiry. */
  days?: unknown;
}

export interface CreatedApiToken {
  token: TokenRecord;
  /** The Basic username the token is used with. */
  username: string;
  /** Shown once, never stored. */
  secret: string;
}

/** Who creates a token through the admin API: the scopes it may hand out, and the API token it acts with, if any. */
export interface TokenGrantor {
  scopes: readonly string[];
  /** Becomes the new token's parent: the new token expires no later than it, and is revoked with it. */
  token?: Pick<TokenRecord, 'id' | 'expiresAt'>;
}

/**
 * Creates a factory API token. A token acting through the admin API (`grantor`) can only hand out
 * scopes it has itself, so a token can never mint a more powerful one; and the new token is its
 * child: it expires no later than the grantor (whatever lifetime was asked) and is revoked with it.
 */
export async function createApiToken(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  request: NewApiTokenRequest,
  grantor: TokenGrantor | 'operator',
): Promise<CreatedApiToken> {
  const scopes = assertScopes(request.scopes);
  checkRegistrationTokenRequest(scopes, request.days);
  const description = assertLabel(request.description, 'description');
  let expiresAt: number | null = null;
  if (request.days !== undefined && request.days !== null) {
    const d = request.days;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_TTL_DAYS) {
      throw invalidInput('days_invalid', `days must be a whole number between 1 and ${MAX_TTL_DAYS}`);
    }
    expiresAt = deps.now() + d * 86_400_000;
  }
  if (grantor !== 'operator') {
    const granted = (s: string) => grantor.scopes.includes(s) || (s === REGISTRATION_SCOPE && grantsRegistration(grantor.scopes));
    const beyond = scopes.filter((s) => !granted(s) || OPERATOR_ONLY_SCOPES.includes(s));
    if (beyond.length > 0) throw forbidden('scope_not_grantable', `this token cannot grant: ${beyond.join(', ')}`);
    const parentExpiry = grantor.token?.expiresAt ?? null;
    if (parentExpiry !== null) expiresAt = Math.min(expiresAt ?? parentExpiry, parentExpiry);
  }
  const parentId = grantor === 'operator' ? null : (grantor.token?.id ?? null);
  const id = newTokenId();
  const { secret, secretHash } = newSecret('api');
  const token: TokenRecord = {
    id,
    kind: 'api',
    factoryId: factory.id,
    deviceUuid: null,
    scopes,
    description,
    service: null,
    subject: id,
    createdAt: deps.now(),
    expiresAt,
    revokedAt: null,
    parentId,
  };
  const details = { scopes, expiresAt, ...(parentId ? { parentId } : {}) };
  await commit(deps, { type: 'token.created', ...by(actor), factoryId: factory.id, target: id, details }, (audit) =>
    deps.store.insertToken({ ...token, secretHash }, audit),
  );
  return { token, username: id, secret };
}

export async function revokeApiToken(deps: AuthorityDeps, actor: Actor, factory: Factory, id: unknown): Promise<void> {
  if (typeof id !== 'string' || !/^tok_[A-Za-z0-9_-]{16}$/.test(id)) throw invalidInput('token_id_invalid', 'a token id looks like tok_ followed by 16 characters');
  const token = await deps.store.getToken(id);
  if (!token || token.factoryId !== factory.id || token.kind !== 'api') throw notFound('token_not_found', `factory "${factory.name}" has no API token ${id}`);
  // The tokens it created, and theirs, go with it (the store finds them by their parent).
  const event = { type: 'token.revoked', ...by(actor), factoryId: factory.id, target: id } as const;
  const descendants = await commit(deps, event, (audit) => deps.store.revokeToken(id, audit));
  for (const d of descendants) deps.events?.publish({ ...event, factoryId: d.factoryId, target: d.id, details: { revokedWith: id } });
}

export interface MintedDeviceToken {
  username: string;
  secret: string;
  expiresAt: number;
}

/** Mints the ephemeral read-only token `/hub-creds/` hands to a device. */
export async function mintDeviceToken(deps: AuthorityDeps, device: DeviceAuthView, source: string | null): Promise<MintedDeviceToken> {
  const now = deps.now();
  // A token never outlives the certificate that obtained it.
  const expiresAt = Math.min(now + deps.policy.deviceTokenTtlSeconds * 1000, device.notAfter);
  const id = newTokenId();
  const { secret, secretHash } = newSecret('device');
  const record: NewTokenRecord = {
    id,
    kind: 'device',
    factoryId: device.factoryId,
    deviceUuid: device.uuid,
    scopes: ['containers:read'],
    description: null,
    service: null,
    subject: device.uuid,
    createdAt: now,
    expiresAt,
    secretHash,
  };
  await commit(
    deps,
    {
      type: 'token.minted',
      actor: `device:${device.uuid}`,
      source,
      factoryId: device.factoryId,
      // The device is the target, so its history (`tollgate device show`) lists its tokens.
      target: device.uuid,
      details: { tokenId: id, expiresAt: new Date(expiresAt).toISOString() },
    },
    (audit) => deps.store.insertToken(record, audit),
  );
  return { username: device.uuid, secret, expiresAt };
}
