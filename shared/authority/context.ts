import type { KeyAlgorithm } from '../pki/index.js';
import type { KeyStore } from '../keystore.js';
import type { Store } from '../store/types.js';
import type { EventPublisher } from './events.js';

/** Who is acting and from where; copied into every event. */
export interface Actor {
  /** `operator` (local CLI), `token:<id>` (admin API), `device:<uuid>` (gateway), `system`. */
  actor: string;
  source?: string | null;
}

export interface AuthorityPolicy {
  /** Default and maximum lifetime of a device certificate signed by an online CA. */
  deviceCertDays: number;
  /** Maximum lifetime of a test device certificate. */
  testCertMaxHours: number;
  /** Key types device certificates may certify (absent: every type the key policy accepts). */
  allowedKeyTypes?: readonly KeyAlgorithm[];
  /** Lifetime of a device token minted by the gateway. */
  deviceTokenTtlSeconds: number;
}

export interface AuthorityDeps {
  store: Store;
  keys: KeyStore;
  policy: AuthorityPolicy;
  /** Injectable clock (ms since epoch), for tests of expiry. */
  now: () => number;
  /** Where committed events go (log lines, metrics); absent: nowhere (the CLI). */
  events?: EventPublisher;
}

/** The envelope fields of an event by `actor`. */
export function by(actor: Actor): { actor: string; source: string | null } {
  return { actor: actor.actor, source: actor.source ?? null };
}
