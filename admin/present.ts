import type { ApiToken, AuditRecord, Device, DeviceCa, Factory, SigningKeyRecord } from '../shared/store/types.js';

/**
 * The JSON shapes of the admin API and of the CLI's --json output: one place, so both say the same.
 * Timestamps are RFC 3339; nothing secret is ever part of a shape.
 */
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function presentFactory(f: Factory) {
  return { id: f.id, name: f.name, createdAt: iso(f.createdAt) };
}

export function presentCa(ca: DeviceCa) {
  return {
    id: ca.id,
    kind: ca.kind,
    commonName: ca.subjectCommonName,
    state: ca.state,
    stateReason: ca.stateReason,
    fingerprint256: ca.fingerprint256,
    notAfter: iso(ca.notAfter),
    createdAt: iso(ca.createdAt),
    certificate: ca.certificatePem,
  };
}

export function presentDevice(d: Device, factoryName: string) {
  return {
    uuid: d.uuid,
    factory: factoryName,
    name: d.name,
    state: d.state,
    stateReason: d.stateReason,
    test: d.isTest,
    caId: d.caId,
    certificate: { fingerprint256: d.certificateFingerprint, publicKeyFingerprint: d.publicKeyFingerprint, notAfter: iso(d.notAfter) },
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

export function presentToken(t: ApiToken) {
  return {
    id: t.id,
    username: t.subject,
    scopes: t.scopes,
    description: t.description,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
  };
}

export function presentAudit(a: AuditRecord) {
  return {
    id: a.id,
    at: iso(a.at),
    actor: a.actor,
    action: a.action,
    outcome: a.outcome,
    target: a.target ?? null,
    reason: a.reason ?? null,
    source: a.source ?? null,
    details: a.details ?? null,
  };
}

export function presentSigningKey(k: SigningKeyRecord) {
  return { kid: k.kid, alg: k.alg, status: k.status, createdAt: iso(k.createdAt), activatedAt: iso(k.activatedAt), certificate: k.certificatePem };
}

export type DeviceJson = ReturnType<typeof presentDevice>;
export type CaJson = ReturnType<typeof presentCa>;
export type TokenJson = ReturnType<typeof presentToken>;
export type AuditJson = ReturnType<typeof presentAudit>;
export type FactoryJson = ReturnType<typeof presentFactory>;
