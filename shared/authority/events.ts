import type { AuditEntry, CaKind, DeviceState, JitMode, Store } from '../store/types.js';

/**
 * The authority's domain events: every change it makes and every credential it hands out or refuses
 * is one typed event.
 *
 * An event is written in two steps. Its audit record goes to the store inside the transaction of the
 * change it describes (`commit` hands the record to the store call that makes the change), so the
 * audit trail can never disagree with the state. Only once that transaction committed is the event
 * published to the process's subscribers (log lines, metrics: shared/ops/event-subscribers.ts),
 * which therefore never report a change that did not happen. With the store's group commit, a
 * caller's promise, and so the publication, waits for the batch that holds its rows.
 */

/** What every event says: who, from where, about which factory and object, and why if refused. */
interface Envelope {
  /** `operator` (local CLI), `token:<id>` (admin API or realm), `device:<uuid>`, `user:<name>`..., `system`, `anonymous`. */
  actor: string;
  /** The client's address when the request came over the network. */
  source?: string | null;
  factoryId?: string | null;
  /** What was acted on: a device UUID, a token id, a CA id, a key id, a factory name. */
  target?: string | null;
  reason?: string | null;
}

type Event<T extends string, D = undefined> = Envelope & { type: T } & (D extends undefined ? { details?: undefined } : { details: D });

/* A type, not an interface: an audit record's details are a plain record. */
export type DeviceEnrolledDetails = {
  via: 'csr' | 'certificate' | 'jit';
  caId: string;
  state: DeviceState;
  test: boolean;
  fingerprint256: string;
  notAfter: string;
  /** One of a bulk enrollment, all written in one transaction. */
  bulk?: boolean;
};

export type DeviceRenewedDetails = {
  previousFingerprint256: string;
  fingerprint256: string;
  newKey: boolean;
  notAfter: string;
  retired?: string[];
};

export type RegistryTokenIssuedDetails = {
  /** The granted access, as the OAuth2 `scope` string. */
  scope: string;
  jti: string;
  kid: string;
  /** `basic`, `password` or `refresh_token`. */
  via: string;
  clientId?: string;
  /** The refresh token presented (refresh grant) or handed out with this token. */
  refreshTokenId?: string;
};

/**
 * Where a request was refused: a credential at the gateway's token mint, its other device routes,
 * renewal, registration, the admin API or the realm; a device's next-key announcement.
 */
export type RefusalAction =
  | 'token.refused'
  | 'device.refused'
  | 'device.renew_refused'
  | 'device.register_refused'
  | 'device.next_key_refused'
  | 'console.signin_refused'
  | 'admin.refused'
  | 'realm.refused';

export type RefusedEvent = Envelope & { type: RefusalAction; reason: string; details?: Record<string, unknown> | null };

export type DeviceStateEvent = 'device.enabled' | 'device.pending' | 'device.disabled' | 'device.revoked';

/** What a device reported about itself (device-events.ts): its word, recorded as such. */
export type DeviceReportDetails = { eventId: string; type: string; typeVersion: number; deviceTime: string } & Record<string, unknown>;
export type CaStateEvent = 'ca.enabled' | 'ca.disabled' | 'ca.revoked';

export type DomainEvent =
  | Event<'factory.created'>
  | Event<'factory.settings_changed', { jitMode: JitMode; certMaxDays: number | null; testCertMaxHours: number | null; keyTypes: string[] | null }>
  | Event<'ca.created' | 'ca.added', { kind: CaKind; fingerprint256: string }>
  | Event<CaStateEvent>
  | Event<'ca.registration_code_created'>
  | Event<'device.enrolled' | 'device.registered_jit', DeviceEnrolledDetails>
  | Event<DeviceStateEvent>
  | Event<'device.deleted', { fingerprint256: string }>
  | Event<'device.renewed', DeviceRenewedDetails>
  | Event<'device.certificate_superseded', { fingerprint256: string; supersededBy: string }>
  | Event<'device.next_key_announced', { publicKeyFingerprint: string; state: 'pending' | 'certified'; algorithm?: string }>
  | Event<'device.next_key_cleared', { reason: string }>
  | Event<'device.event', DeviceReportDetails>
  | Event<'device.registered', { tokenId: string; hardwareId: string; fingerprint256: string }>
  | Event<'token.created', { scopes: string[]; expiresAt: number | null; parentId?: string }>
  | Event<'token.revoked'>
  /** A token revoked because the token that created it (or its creator...) was. */
  | Event<'token.revoked', { revokedWith: string }>
  | Event<'token.minted', { tokenId: string; expiresAt: string }>
  | Event<'realm.token_issued', RegistryTokenIssuedDetails>
  | RefusedEvent
  | Event<'console.signin_code_created', { expiresAt: string }>
  | Event<'console.signed_in' | 'console.signed_out', { via: 'token' | 'oidc' | 'code' }>
  | Event<'signing_key.created', { alg: string }>
  | Event<'signing_key.activated' | 'signing_key.retired'>
  | Event<'operator_token.created', { expiresAt: number | null }>
  | Event<'operator_token.revoked'>;

const REFUSALS: ReadonlySet<string> = new Set<RefusalAction>([
  'token.refused',
  'device.refused',
  'device.renew_refused',
  'device.register_refused',
  'device.next_key_refused',
  'console.signin_refused',
  'admin.refused',
  'realm.refused',
]);

export function isRefusal(e: DomainEvent): e is RefusedEvent {
  return REFUSALS.has(e.type);
}

/** A subscriber hears of an event once it is committed. It must not throw; a throw is ignored. */
export type EventSubscriber = (event: DomainEvent) => void;

export interface EventPublisher {
  publish(event: DomainEvent): void;
}

/** Publishes to each subscriber in turn; one that throws stops neither the others nor the caller. */
export function createEventBus(subscribers: readonly EventSubscriber[]): EventPublisher {
  return {
    publish(event) {
      for (const subscriber of subscribers) {
        try {
          subscriber(event);
        } catch {
          // A broken log sink or metric must not undo or fail a committed change.
        }
      }
    },
  };
}

/** The audit record of an event: what the store writes in the event's transaction. */
export function auditRecordOf(event: DomainEvent): AuditEntry {
  return {
    actor: event.actor,
    action: event.type,
    outcome: isRefusal(event) ? 'denied' : 'success',
    factoryId: event.factoryId ?? null,
    target: event.target ?? null,
    reason: event.reason ?? null,
    source: event.source ?? null,
    details: event.details ?? null,
  };
}

/** What recording an event needs: the store, and the process's subscribers (none in the CLI). */
export interface EventDeps {
  store: Pick<Store, 'appendAudit'>;
  events?: EventPublisher;
}

/**
 * One unit of work: `write` makes the change and stores the event's audit record (its argument) in
 * the same transaction; the event is published only after that commit, and only if `publishedIf`
 * says the store made the change (a store method that may find nothing to do returns false).
 */
export async function commit<T>(
  deps: Pick<EventDeps, 'events'>,
  event: DomainEvent,
  write: (audit: AuditEntry) => Promise<T>,
  options: { publishedIf?: (result: T) => boolean } = {},
): Promise<T> {
  const result = await write(auditRecordOf(event));
  if (options.publishedIf?.(result) ?? true) deps.events?.publish(event);
  return result;
}

/** `commit` for a change that several events describe (a bulk enrollment): one write, every record. */
export async function commitAll<T>(deps: Pick<EventDeps, 'events'>, events: readonly DomainEvent[], write: (audits: AuditEntry[]) => Promise<T>): Promise<T> {
  const result = await write(events.map(auditRecordOf));
  for (const event of events) deps.events?.publish(event);
  return result;
}

/** Records an event that changes nothing else: a refusal, a registry token issued without a refresh token. */
export function record(deps: EventDeps, event: DomainEvent): Promise<void> {
  return commit(deps, event, (audit) => deps.store.appendAudit(audit));
}
