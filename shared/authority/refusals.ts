import { isTollgateError, TollgateError, type ErrorKind } from '../errors.js';
import { record, type EventDeps, type RefusedEvent } from './events.js';

/**
 * Why a credential is refused: the one table of reasons and messages for every service that judges
 * one (the gateway's device identification, the realm, the admin API's bearer check). The reason is
 * the stable code clients, the audit trail and the metrics see; the kind says what sort of refusal
 * it is (401: the credential proves nothing; 403: it proves who, and that one may not).
 *
 * Account authenticators (static users, OIDC, AWS identity, hooks) bring reasons of their own; this
 * table holds Tollgate's.
 */
export const REFUSALS = {
  // ---- Tollgate secrets (device, API and refresh tokens) ----
  secret_malformed: ['unauthenticated', 'the password is not a Tollgate token'],
  credentials_unknown: ['unauthenticated', 'the credentials are not valid'],
  token_unknown: ['unauthenticated', 'the credentials are not valid'],
  /** The admin API's answer for a malformed or unknown token: it does not say which. */
  token_invalid: ['unauthenticated', 'the admin API token is invalid'],
  token_required: ['unauthenticated', 'an admin API token is required (Authorization: Bearer tga_... or tgo_...)'],
  registration_token_missing: ['unauthenticated', 'send the registration token in an OSF-TOKEN header (or Authorization: Bearer)'],
  /** Registration's answer for a malformed or unknown token, like token_invalid's. */
  registration_token_invalid: ['unauthenticated', 'the registration token is not valid'],
  refresh_token_not_allowed: ['unauthenticated', 'a refresh token is only accepted by the refresh_token grant'],
  username_mismatch: ['unauthenticated', 'the username does not belong to this token'],
  token_revoked: ['unauthenticated', 'the token has been revoked; obtain a new one'],
  token_expired: ['unauthenticated', 'the token has expired; obtain a new one'],
  service_mismatch: ['unauthenticated', 'the refresh token was issued for another service'],
  device_refresh_not_supported: ['unauthenticated', 'devices get no refresh tokens: the credential helper gets a new device token from the gateway'],
  parent_token_unknown: ['unauthenticated', 'the API token this refresh token came from no longer exists'],
  parent_token_revoked: ['unauthenticated', 'the API token this refresh token came from has been revoked'],
  parent_token_expired: ['unauthenticated', 'the API token this refresh token came from has expired'],

  // ---- the device a credential stands for ----
  device_unknown: ['forbidden', 'the device is not enrolled'],
  device_deleted: ['forbidden', 'the device was deleted; only its factory can enroll it again, explicitly'],
  device_pending: ['forbidden', 'the device is awaiting activation by a factory admin'],
  device_disabled: ['forbidden', 'the device is disabled'],
  device_revoked: ['forbidden', 'the device is revoked'],
  ca_revoked: ['forbidden', 'the CA that issued the device certificate is revoked'],
  ca_expired: ['unauthenticated', 'the CA that issued the client certificate has expired'],
  ca_not_yet_valid: ['unauthenticated', 'the CA that issued the client certificate is not yet valid'],

  // ---- the client certificate a device presents ----
  certificate_required: ['unauthenticated', 'a client certificate is required'],
  certificate_invalid: ['unauthenticated', 'the client certificate cannot be read'],
  certificate_expired: ['unauthenticated', 'the client certificate has expired'],
  certificate_not_yet_valid: ['unauthenticated', 'the client certificate is not yet valid'],
  certificate_untrusted: ['unauthenticated', 'the client certificate was not issued by a CA registered with this gateway'],
  certificate_purpose_invalid: ['unauthenticated', 'the client certificate is not valid for TLS client authentication (extended key usage clientAuth)'],
  certificate_revoked: ['unauthenticated', 'the client certificate is revoked'],
  certificate_rejected: ['unauthenticated', 'the client certificate was rejected'],
  certificate_mismatch: ['forbidden', 'this certificate is not the one enrolled for the device'],
  certificate_superseded: ['forbidden', 'this certificate was replaced by a newer one; use the renewed certificate'],
} as const satisfies Record<string, readonly [ErrorKind, string]>;

export type RefusalReason = keyof typeof REFUSALS;

/** The message for `reason`, with what is particular to this case after a colon. */
export function refusalMessage(reason: RefusalReason, detail?: string): string {
  const message = REFUSALS[reason][1];
  return detail === undefined ? message : `${message}: ${detail}`;
}

/** The refusal as the error the HTTP edges answer with (401 or 403 by its kind). */
export function refusalError(reason: RefusalReason, detail?: string): TollgateError {
  return new TollgateError(REFUSALS[reason][0], reason, refusalMessage(reason, detail));
}

/**
 * Records `error` as a refusal event (`event` without its reason) when it is a TollgateError, the
 * refusal of a request the authority judged; anything else is a failure, not a decision, and is not
 * recorded. A refusal that cannot be recorded fails the request with the store's error instead.
 */
export async function recordRefusal(deps: EventDeps, error: unknown, event: Omit<RefusedEvent, 'reason'>): Promise<void> {
  if (isTollgateError(error)) await record(deps, { ...event, reason: error.code });
}
