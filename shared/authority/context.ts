import type { KeyAlgorithm } from '../pki/index.js';
import type { KeyStore } from '../keystore.js';
import type { AuditEntry, Store } from '../store/types.js';

/** Who is acting and from where; copied into every audit record. */
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
}

export function auditOf(actor: Actor, entry: Omit<AuditEntry, 'actor' | 'source'>): AuditEntry {
  return { ...entry, actor: actor.actor, source: actor.source ?? null };
}
