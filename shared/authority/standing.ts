import { constantTimeEqual, hashSecret, secretKind, type SecretKind } from '../secrets.js';
import type { CaState, DeviceState, TokenAuthView } from '../store/types.js';
import type { AuthorityDeps } from './context.js';
import type { RefusalReason } from './refusals.js';

/**
 * A credential's standing: whether what it stands for may act now. Decided here only, for every
 * service: the gateway (a device by its certificate), the realm (a device, API or refresh token) and
 * the admin API (an API token). Nothing is cached; every decision reads the current state.
 */

/** The device facts a decision needs, as the store has them (a device row, or a token's joined device). */
export interface DeviceFacts {
  state: DeviceState;
  caState: CaState;
  factoryName: string;
  certificateFingerprint: string;
  /** The certificate a rotation replaced, accepted until the device first presents the new one. */
  previousCertificateFingerprint: string | null;
}

/** What the TLS layer established about the client's certificate, normalised. */
export interface PresentedCertificate {
  /** SHA-256 of the DER, lower-case hex without colons. */
  fingerprint256: string;
  commonName: string | undefined;
  organizationalUnit: string | undefined;
  notAfter: number;
  /** The DER, when the caller has it: just-in-time registration needs the whole certificate. */
  der?: Buffer;
}

export interface StandingQuestion {
  now: number;
  /** The device (its state alone for a token; with its certificate for a presented one), or null when none is enrolled. */
  device: DeviceFacts | Pick<DeviceFacts, 'state' | 'caState'> | null;
  /** The certificate the device presents, when it authenticates with one (the gateway). */
  presented?: PresentedCertificate;
  /** Whether the presented certificate was retired by a rotation; asked only when it matters. */
  isRetired?: () => Promise<boolean>;
}

/**
 * The one decision on a device: null when it may act, else why not. In order: the presented
 * certificate's expiry, whether a device of the factory it claims is enrolled under it, the
 * certificate pin (the enrolled certificate, or the one a rotation just replaced), its CA, its state.
 */
export async function deviceStanding({ now, device, presented, isRetired }: StandingQuestion): Promise<RefusalReason | null> {
  if (presented && presented.notAfter <= now) return 'certificate_expired';
  if (!device) return presented && (await isRetired?.()) ? 'certificate_superseded' : 'device_unknown';
  if (presented && 'certificateFingerprint' in device) {
    // Device UUIDs are global: a certificate of another factory naming this one's device is no
    // device of its own factory, and is told nothing more than for any UUID nobody holds.
    if (presented.organizationalUnit !== device.factoryName) return 'device_unknown';
    if (device.certificateFingerprint !== presented.fingerprint256 && device.previousCertificateFingerprint !== presented.fingerprint256) {
      return (await isRetired?.()) ? 'certificate_superseded' : 'certificate_mismatch';
    }
  }
  if (device.caState === 'revoked') return 'ca_revoked';
  switch (device.state) {
    case 'active':
      return null;
    case 'pending':
      return 'device_pending';
    case 'disabled':
      return 'device_disabled';
    case 'revoked':
      return 'device_revoked';
  }
}

export interface SecretExpectations {
  /** The kinds accepted here (the admin API takes API tokens only; the refresh grant refresh tokens only). */
  kinds: readonly SecretKind[];
  /** The Basic username the secret must be presented with; null where there is none (bearer, refresh grant). */
  username: string | null;
  /** The registry service a refresh token must have been issued for. */
  service?: string;
}

export type SecretStanding =
  | { ok: true; token: TokenAuthView }
  /** `token`: the token found, when there was one: whose refusal it is. */
  | { ok: false; reason: RefusalReason; token: TokenAuthView | null };

const refuse = (reason: RefusalReason, token: TokenAuthView | null = null): SecretStanding => ({ ok: false, reason, token });

/**
 * The one authentication of a Tollgate secret: looked up by its hash, its owner checked, then the
 * standing of its device if it is a device's (a device's tokens are revoked with it, and the reason
 * told is the device's), its own state (revocation, expiry, service), and for a refresh token of an
 * API token, that API token's.
 */
export async function authenticateSecret(deps: Pick<AuthorityDeps, 'store' | 'now'>, secret: string, expect: SecretExpectations): Promise<SecretStanding> {
  const kind = secretKind(secret);
  if (kind === null || !expect.kinds.includes(kind)) return refuse('token_unknown');
  // A stored kind that disagrees with the secret's prefix cannot happen for a secret Tollgate
  // made; treat it as unknown rather than trust either.
  return authenticateTokenHash(deps, hashSecret(secret), { ...expect, kinds: [kind] });
}

/** The same by the secret's hash, for callers that keep only the hash (a console session). */
export async function authenticateTokenHash(deps: Pick<AuthorityDeps, 'store' | 'now'>, secretHash: string, expect: SecretExpectations): Promise<SecretStanding> {
  const token = await deps.store.findTokenBySecretHash(secretHash);
  if (!token || !expect.kinds.includes(token.kind)) return refuse('token_unknown');
  const kind = token.kind;
  if (expect.username !== null && !constantTimeEqual(expect.username, token.subject)) return refuse('username_mismatch', token);
  // Devices get no refresh tokens; one made by an earlier version is not honoured.
  if (kind === 'refresh' && token.deviceUuid !== null) return refuse('device_refresh_not_supported', token);
  const now = deps.now();
  // A device's standing first: its tokens were revoked with it, and the device (and the operator
  // reading the audit trail) should hear why, not merely that the token is dead.
  if (token.deviceUuid !== null) {
    const device = token.deviceState === null || token.caState === null ? null : { state: token.deviceState, caState: token.caState };
    const reason = await deviceStanding({ now, device });
    if (reason !== null) return refuse(reason, token);
  }
  if (token.revokedAt !== null) return refuse('token_revoked', token);
  if (token.expiresAt !== null && token.expiresAt <= now) return refuse('token_expired', token);
  if (kind === 'refresh' && token.service !== expect.service) return refuse('service_mismatch', token);
  if (token.deviceUuid !== null) return { ok: true, token };
  if (token.kind === 'device') return refuse('token_unknown'); // a device token always names its device
  if (token.kind === 'refresh') {
    // Revoking an API token must also stop what was refreshed from it.
    const parent = await deps.store.getToken(token.subject);
    if (!parent || parent.kind !== 'api' || parent.factoryId !== token.factoryId) return refuse('parent_token_unknown', token);
    if (parent.revokedAt !== null) return refuse('parent_token_revoked', token);
    if (parent.expiresAt !== null && parent.expiresAt <= now) return refuse('parent_token_expired', token);
  }
  return { ok: true, token };
}
