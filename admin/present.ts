import { z } from 'zod';
import { auditRecordJson } from '../shared/ops/audit-archive.js';
import { parseCertificate } from '../shared/pki/index.js';
import type { TokenRecord, AuditRecord, Device, DeviceCa, DeviceState, Factory, SigningKeyRecord, OperatorToken } from '../shared/store/types.js';

/**
 * The JSON shapes of the admin API and of the CLI's --json output: one place, so both say the same.
 * Each shape is a zod schema (the OpenAPI document is generated from them, and tests validate every
 * answer against that document) and a function that fills it. Timestamps are RFC 3339; nothing
 * secret is ever part of a shape.
 */
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const time = z.iso.datetime({ offset: true }).describe('RFC 3339 time');
const timeOrNull = time.nullable();

export const factorySchema = z.object({ id: z.string(), name: z.string(), createdAt: time }).meta({ title: 'Factory' });

export function presentFactory(f: Factory): FactoryJson {
  return { id: f.id, name: f.name, createdAt: iso(f.createdAt)! };
}

export const deviceStateSchema = z.enum(['active', 'pending', 'disabled', 'revoked']);
export const caStateSchema = z.enum(['active', 'disabled', 'revoked']);

/** How many devices are in each state. */
export const deviceCountsSchema = z.object({ active: z.number().int(), pending: z.number().int(), disabled: z.number().int(), revoked: z.number().int() });

export const caSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['online', 'external']),
    commonName: z.string(),
    state: caStateSchema,
    stateReason: z.string().nullable(),
    fingerprint256: z.string(),
    notAfter: time,
    createdAt: time,
    certificate: z.string().describe('PEM'),
    devices: deviceCountsSchema.optional().describe('devices this CA issued, by state (in lists and single CA answers)'),
  })
  .meta({ title: 'DeviceCa' });

export function presentCa(ca: DeviceCa, devices?: Record<DeviceState, number>): CaJson {
  return {
    id: ca.id,
    kind: ca.kind,
    commonName: ca.subjectCommonName,
    state: ca.state,
    stateReason: ca.stateReason,
    fingerprint256: ca.fingerprint256,
    notAfter: iso(ca.notAfter)!,
    createdAt: iso(ca.createdAt)!,
    certificate: ca.certificatePem,
    ...(devices ? { devices } : {}),
  };
}

export const deviceSchema = z
  .object({
    uuid: z.string(),
    factory: z.string(),
    name: z.string().nullable(),
    state: deviceStateSchema,
    stateReason: z.string().nullable(),
    test: z.boolean(),
    caId: z.string(),
    certificate: z.object({ fingerprint256: z.string(), publicKeyFingerprint: z.string(), notAfter: time }),
    createdAt: time,
    updatedAt: time,
  })
  .meta({ title: 'Device' });

export function presentDevice(d: Device, factoryName: string): DeviceJson {
  return {
    uuid: d.uuid,
    factory: factoryName,
    name: d.name,
    state: d.state,
    stateReason: d.stateReason,
    test: d.isTest,
    caId: d.caId,
    certificate: { fingerprint256: d.certificateFingerprint, publicKeyFingerprint: d.publicKeyFingerprint, notAfter: iso(d.notAfter)! },
    createdAt: iso(d.createdAt)!,
    updatedAt: iso(d.updatedAt)!,
  };
}

export const tokenSchema = z
  .object({
    id: z.string(),
    username: z.string(),
    scopes: z.array(z.string()),
    description: z.string().nullable(),
    createdAt: time,
    expiresAt: timeOrNull,
    revokedAt: timeOrNull,
    parentId: z.string().nullable().describe('the API token that created this one: it expires no later, and is revoked with it'),
  })
  .meta({ title: 'ApiToken' });

export function presentToken(t: TokenRecord): TokenJson {
  return {
    id: t.id,
    username: t.subject,
    scopes: t.scopes,
    description: t.description,
    createdAt: iso(t.createdAt)!,
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    parentId: t.parentId,
  };
}

export const auditSchema = z
  .object({
    id: z.number().int(),
    at: time,
    actor: z.string(),
    action: z.string(),
    outcome: z.enum(['success', 'denied']),
    target: z.string().nullable(),
    reason: z.string().nullable(),
    source: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ title: 'AuditRecord' });

export function presentAudit(a: AuditRecord): AuditJson {
  // The factory is the one asked about: not repeated in each record.
  const { factoryId: _factoryId, ...record } = auditRecordJson(a);
  return record;
}

export const deviceDetailSchema = deviceSchema
  .extend({
    certificate: deviceSchema.shape.certificate.extend({
      subject: z.string().describe('distinguished name, e.g. CN=<uuid>, OU=<factory>'),
      issuer: z.string(),
      serialNumber: z.string(),
      keyType: z.string().describe('ec-p256, ec-p384, rsa-2048, ...'),
      notBefore: time,
      pem: z.string(),
    }),
    history: z.array(auditSchema).describe('enrollment, tokens minted and refused, state changes: the newest 100, oldest first'),
  })
  .meta({ title: 'DeviceDetail' });

/** Node prints a distinguished name one attribute per line; one line reads better. */
const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

export function presentDeviceDetail(d: Device, factoryName: string, history: AuditRecord[]): DeviceDetailJson {
  const cert = parseCertificate(d.certificatePem);
  const base = presentDevice(d, factoryName);
  return {
    ...base,
    certificate: {
      ...base.certificate,
      subject: oneLine(cert.x509.subject),
      issuer: oneLine(cert.x509.issuer),
      serialNumber: cert.serialNumber,
      keyType: cert.key.algorithm,
      notBefore: cert.notBefore.toISOString(),
      pem: cert.pem,
    },
    history: history.map(presentAudit),
  };
}

export const operatorTokenSchema = z
  .object({ id: z.string(), description: z.string().nullable(), createdAt: time, expiresAt: time.nullable(), revokedAt: time.nullable() })
  .meta({ title: 'OperatorToken' });

export function presentOperatorToken(t: OperatorToken): z.infer<typeof operatorTokenSchema> {
  return { id: t.id, description: t.description, createdAt: iso(t.createdAt)!, expiresAt: iso(t.expiresAt), revokedAt: iso(t.revokedAt) };
}

/** An audit record of any factory (or none: accounts, keys), for the operator's audit-all. */
export const auditAllSchema = auditSchema.extend({ factoryId: z.string().nullable() }).meta({ title: 'AuditRecordAnyFactory' });

export const signingKeySchema = z
  .object({
    kid: z.string(),
    alg: z.string(),
    status: z.enum(['trusted', 'active', 'retired']),
    createdAt: time,
    activatedAt: time.nullable(),
    certificate: z.string().describe('PEM'),
  })
  .meta({ title: 'SigningKey' });

export function presentSigningKey(k: SigningKeyRecord): z.infer<typeof signingKeySchema> {
  return { kid: k.kid, alg: k.alg, status: k.status, createdAt: iso(k.createdAt)!, activatedAt: iso(k.activatedAt), certificate: k.certificatePem };
}

/** A page of a list: `next` is an opaque cursor for the following page, null on the last one. */
export function pageSchema<T extends z.ZodType>(item: T, title: string) {
  return z
    .object({ items: z.array(item), next: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page') })
    .meta({ title });
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export type DeviceJson = z.infer<typeof deviceSchema>;
export type DeviceDetailJson = z.infer<typeof deviceDetailSchema>;
export type CaJson = z.infer<typeof caSchema>;
export type TokenJson = z.infer<typeof tokenSchema>;
export type AuditJson = z.infer<typeof auditSchema>;
export type FactoryJson = z.infer<typeof factorySchema>;
