import { conflict, invalidInput, isTollgateError, notFound } from '../errors.js';
import { isIssuedBy, issueCertificate, OID, parseCertificate, parseCsr, type CertificateInfo } from '../pki/index.js';
import type { AuditEntry, Device, DeviceCa, DeviceState, Factory } from '../store/types.js';
import { auditOf, type Actor, type AuthorityDeps } from './context.js';
import { certificatePolicy, checkKeyType } from './factory-settings.js';
import { signingCaFor } from './factories.js';
import { assertDeviceUuid, assertLabel } from './names.js';

const DAY = 86_400_000;

export interface CsrEnrollment {
  csrPem: unknown;
  name?: unknown;
  caId?: unknown;
  /** Lifetime in days (enrolled devices) ... */
  days?: unknown;
  /** ... or in hours or minutes for a test device, capped by policy. */
  test?: boolean;
  hours?: unknown;
  minutes?: unknown;
}

export interface Enrolled {
  device: Device;
  certificatePem: string;
  /** The device CA's certificate: what the device's chain ends in. */
  caCertificatePem: string;
}

function positiveInt(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalidInput(`${field}_invalid`, `${field} must be a whole number between 1 and ${max}`);
  }
  return value;
}

/** Refuses a CSR that asks for uses a device certificate must not have. */
export function checkRequestedUsage(requestedKeyUsage?: string[], requestedExtendedKeyUsage?: string[]): void {
  if (requestedKeyUsage && requestedKeyUsage.length > 0) {
    if (!requestedKeyUsage.includes('digitalSignature')) {
      throw invalidInput('csr_key_usage_invalid', 'the CSR requests a key usage without digitalSignature; a device certificate needs digitalSignature');
    }
    const forbidden = requestedKeyUsage.filter((u) => u === 'keyCertSign' || u === 'cRLSign');
    if (forbidden.length > 0) throw invalidInput('csr_key_usage_invalid', `the CSR requests ${forbidden.join(', ')}: a device certificate cannot sign certificates`);
  }
  if (requestedExtendedKeyUsage && requestedExtendedKeyUsage.length > 0 && !requestedExtendedKeyUsage.includes(OID.clientAuth)) {
    throw invalidInput('csr_key_usage_invalid', 'the CSR requests extended key usages without clientAuth; a device certificate is a TLS client certificate');
  }
}

function checkSubject(subject: { commonName?: string; organizationalUnit?: string }, factory: Factory, what: string): string {
  const uuid = assertDeviceUuid(subject.commonName, `the ${what}'s CN (device UUID)`);
  if (subject.organizationalUnit !== factory.name) {
    throw invalidInput(
      'factory_mismatch',
      `the ${what}'s OU is ${subject.organizationalUnit === undefined ? 'missing' : `"${subject.organizationalUnit}"`}; it must be the factory name "${factory.name}"`,
    );
  }
  return uuid;
}

async function refuseDuplicate(deps: AuthorityDeps, uuid: string): Promise<void> {
  if (await deps.store.getDevice(uuid)) throw conflict('device_exists', `a device with UUID ${uuid} is already enrolled`);
}

/** Enrolls a device from its CSR: the factory's online CA signs it. */
export async function enrollFromCsr(deps: AuthorityDeps, actor: Actor, factory: Factory, request: CsrEnrollment): Promise<Enrolled> {
  return store(deps, await prepareFromCsr(deps, actor, factory, request));
}

/** A checked enrollment, not yet written: the device record, its audit entry, and what the device gets. */
export interface PreparedEnrollment {
  device: Device;
  audit: AuditEntry;
  certificatePem: string;
  caCertificatePem: string;
}

async function store(deps: AuthorityDeps, prepared: PreparedEnrollment): Promise<Enrolled> {
  const device = await deps.store.insertDevice(prepared.device, prepared.audit);
  return { device, certificatePem: prepared.certificatePem, caCertificatePem: prepared.caCertificatePem };
}

async function prepareFromCsr(deps: AuthorityDeps, actor: Actor, factory: Factory, request: CsrEnrollment): Promise<PreparedEnrollment> {
  if (typeof request.csrPem !== 'string') throw invalidInput('csr_missing', 'a PEM certificate signing request (csr) is required');
  const name = assertLabel(request.name, 'name', 128);
  const csr = await parseCsr(request.csrPem);
  const uuid = checkSubject(csr.subject, factory, 'CSR');
  checkRequestedUsage(csr.requestedKeyUsage, csr.requestedExtendedKeyUsage);
  const policy = await certificatePolicy(deps, factory.id);
  checkKeyType(policy, csr.key, factory);

  const now = deps.now();
  let lifetimeMs: number;
  if (request.test) {
    // Test certificates are short-lived by design; minutes let CI watch one expire.
    const capMinutes = policy.testCertMaxHours * 60;
    if (request.hours !== undefined && request.minutes !== undefined) {
      throw invalidInput('lifetime_ambiguous', 'give hours or minutes, not both');
    }
    const capHours = policy.testCertMaxHours;
    const asked = request.minutes ?? request.hours;
    if (typeof asked === 'number' && Number.isInteger(asked) && asked > (request.minutes !== undefined ? capMinutes : capHours)) {
      throw invalidInput(
        'lifetime_exceeds_policy',
        `a test certificate may live at most ${capHours} hours; ${asked} ${request.minutes !== undefined ? 'minutes' : 'hours'} were asked`,
      );
    }
    const minutes =
      request.minutes !== undefined
        ? positiveInt(request.minutes, 'minutes', capMinutes)
        : request.hours !== undefined
          ? positiveInt(request.hours, 'hours', capHours) * 60
          : Math.min(60, capMinutes);
    lifetimeMs = minutes * 60_000;
  } else {
    const cap = policy.certMaxDays;
    if (request.days !== undefined && typeof request.days === 'number' && Number.isInteger(request.days) && request.days > cap) {
      throw invalidInput('lifetime_exceeds_policy', `a device certificate may live at most ${cap} days; ${request.days} were asked`);
    }
    lifetimeMs = (request.days === undefined ? cap : positiveInt(request.days, 'days', cap)) * DAY;
  }

  const ca = await signingCaFor(deps, factory, request.caId);
  await refuseDuplicate(deps, uuid);
  const notAfter = Math.min(now + lifetimeMs, ca.notAfter);
  const certificatePem = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: uuid, organizationalUnit: factory.name },
    publicKey: csr.publicKey,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(notAfter),
    issuer: { certificatePem: ca.certificatePem, privateKeyPem: deps.keys.get(ca.keyRef!) },
  });
  const cert = parseCertificate(certificatePem);
  return { ...deviceRecord(deps, actor, factory, ca, cert, uuid, name, request.test === true, 'csr'), certificatePem: cert.pem, caCertificatePem: ca.certificatePem };
}

/** Enrolls a device from a certificate one of the factory's CAs issued (the factory signed it offline). */
export async function enrollFromCertificate(deps: AuthorityDeps, actor: Actor, factory: Factory, request: CertificateEnrollment): Promise<Enrolled> {
  return store(deps, await prepareFromCertificate(deps, actor, factory, request));
}

export interface CertificateEnrollment {
  certificatePem: unknown;
  name?: unknown;
}

async function prepareFromCertificate(deps: AuthorityDeps, actor: Actor, factory: Factory, request: CertificateEnrollment): Promise<PreparedEnrollment> {
  if (typeof request.certificatePem !== 'string') throw invalidInput('certificate_missing', 'a PEM device certificate is required');
  const name = assertLabel(request.name, 'name', 128);
  const cert = parseCertificate(request.certificatePem);
  const uuid = checkSubject(cert.subject, factory, 'certificate');
  if (cert.isCa) throw invalidInput('certificate_is_ca', 'a CA certificate cannot be a device certificate');
  if (!cert.extendedKeyUsage.includes(OID.clientAuth)) {
    throw invalidInput('certificate_key_usage_invalid', 'the certificate lacks extended key usage clientAuth');
  }
  if (cert.keyUsage.length > 0 && !cert.keyUsage.includes('digitalSignature')) {
    throw invalidInput('certificate_key_usage_invalid', 'the certificate lacks key usage digitalSignature');
  }
  checkKeyType(await certificatePolicy(deps, factory.id), cert.key, factory);
  const now = deps.now();
  if (cert.notAfter.getTime() <= now) throw invalidInput('certificate_expired', `the certificate expired on ${cert.notAfter.toISOString()}`);
  if (cert.notBefore.getTime() > now + 5 * 60_000) throw invalidInput('certificate_not_yet_valid', `the certificate is valid only from ${cert.notBefore.toISOString()}`);

  const ca = await issuingCa(deps, factory, cert);
  await refuseDuplicate(deps, uuid);
  return { ...deviceRecord(deps, actor, factory, ca, cert, uuid, name, false, 'certificate'), certificatePem: cert.pem, caCertificatePem: ca.certificatePem };
}

/** One row of a bulk enrollment: a CSR (signed by the online CA) or a certificate a factory CA issued. */
export type BulkEnrollmentRow = ({ csrPem: unknown; days?: unknown } | { certificatePem: unknown }) & { name?: unknown };

export type BulkRowResult = { row: number; uuid: string; ok: true } | { row: number; uuid: string | null; ok: false; code: string; message: string };

/** The most rows one bulk enrollment takes: a batch a person can still read the results of. */
export const BULK_ENROLLMENT_MAX_ROWS = 500;

/**
 * Enrolls many devices at once, all or nothing: every row is checked (and its certificate signed)
 * first; if any row is refused, nothing is written and the result names each row's fate. Then every
 * device and its audit record are written in one transaction.
 */
export async function enrollBatch(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  rows: readonly BulkEnrollmentRow[],
): Promise<{ ok: true; results: BulkRowResult[]; enrolled: Enrolled[] } | { ok: false; results: BulkRowResult[] }> {
  if (rows.length === 0 || rows.length > BULK_ENROLLMENT_MAX_ROWS) {
    throw invalidInput('rows_invalid', `a bulk enrollment takes 1 to ${BULK_ENROLLMENT_MAX_ROWS} rows`);
  }
  const prepared: (PreparedEnrollment | null)[] = [];
  const results: BulkRowResult[] = [];
  const seen = new Map<string, number>();
  for (const [i, row] of rows.entries()) {
    try {
      const p =
        'csrPem' in row
          ? await prepareFromCsr(deps, actor, factory, { csrPem: row.csrPem, name: row.name, days: row.days })
          : await prepareFromCertificate(deps, actor, factory, { certificatePem: row.certificatePem, name: row.name });
      const twin = seen.get(p.device.uuid);
      if (twin !== undefined) throw conflict('device_exists', `row ${twin + 1} enrolls the same UUID ${p.device.uuid}`);
      seen.set(p.device.uuid, i);
      prepared.push(p);
      results.push({ row: i + 1, uuid: p.device.uuid, ok: true });
    } catch (e) {
      if (!isTollgateError(e) || e.kind === 'unavailable') throw e;
      prepared.push(null);
      results.push({ row: i + 1, uuid: null, ok: false, code: e.code, message: e.message });
    }
  }
  const ready = prepared.filter((p): p is PreparedEnrollment => p !== null);
  if (ready.length !== rows.length) return { ok: false, results };
  const devices = await deps.store.insertDevices(ready.map(({ device, audit }) => ({ device, audit: { ...audit, details: { ...audit.details, bulk: true } } })));
  return { ok: true, results, enrolled: devices.map((device, i) => ({ device, certificatePem: ready[i]!.certificatePem, caCertificatePem: ready[i]!.caCertificatePem })) };
}

async function issuingCa(deps: AuthorityDeps, factory: Factory, cert: CertificateInfo): Promise<DeviceCa> {
  const cas = await deps.store.listDeviceCas({ factoryId: factory.id });
  for (const ca of cas) {
    if (isIssuedBy(cert, parseCertificate(ca.certificatePem))) {
      if (ca.state !== 'active') throw conflict('ca_not_active', `the issuing CA ${ca.id} is ${ca.state}: it enrolls no new devices`);
      return ca;
    }
  }
  throw invalidInput('certificate_untrusted', `the certificate was not issued by any CA of factory "${factory.name}"`);
}

/** Writes a new device and its audit record (deviceRecord's arguments). */
export async function insert(...args: Parameters<typeof deviceRecord>): Promise<Device> {
  const record = deviceRecord(...args);
  return args[0].store.insertDevice(record.device, record.audit);
}

/** The device record an enrollment writes, and the audit entry that describes it. */
function deviceRecord(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  ca: DeviceCa,
  cert: CertificateInfo,
  uuid: string,
  name: string | null,
  isTest: boolean,
  via: 'csr' | 'certificate' | 'jit',
  state: DeviceState = 'active',
): { device: Device; audit: AuditEntry } {
  const now = deps.now();
  const device: Device = {
    uuid,
    factoryId: factory.id,
    caId: ca.id,
    name,
    state,
    stateReason: null,
    isTest,
    certificatePem: cert.pem,
    certificateFingerprint: cert.fingerprint256,
    publicKeyFingerprint: cert.publicKeyFingerprint,
    notAfter: cert.notAfter.getTime(),
    createdAt: now,
    updatedAt: now,
  };
  return {
    device,
    audit: auditOf(actor, {
      action: via === 'jit' ? 'device.registered_jit' : 'device.enrolled',
      outcome: 'success',
      factoryId: factory.id,
      target: uuid,
      details: { via, caId: ca.id, state, test: isTest, fingerprint256: cert.fingerprint256, notAfter: cert.notAfter.toISOString() },
    }),
  };
}

export async function requireDevice(deps: AuthorityDeps, factory: Factory, uuid: unknown): Promise<Device> {
  const id = assertDeviceUuid(uuid);
  const device = await deps.store.getDevice(id);
  // A device of another factory is reported exactly like a missing one.
  if (!device || device.factoryId !== factory.id) throw notFound('device_not_found', `factory "${factory.name}" has no device ${id}`);
  return device;
}

const DEVICE_TRANSITIONS: Record<DeviceState, DeviceState[]> = {
  pending: ['active', 'disabled', 'revoked'],
  active: ['disabled', 'revoked'],
  disabled: ['active', 'revoked'],
  revoked: [],
};

const ACTION_OF: Record<DeviceState, string> = {
  active: 'device.enabled',
  pending: 'device.pending',
  disabled: 'device.disabled',
  revoked: 'device.revoked',
};

export async function setDeviceState(
  deps: AuthorityDeps,
  actor: Actor,
  factory: Factory,
  uuid: unknown,
  state: DeviceState,
  reason: unknown,
): Promise<Device> {
  const device = await requireDevice(deps, factory, uuid);
  const why = assertLabel(reason, 'reason');
  if (!DEVICE_TRANSITIONS[device.state].includes(state)) {
    throw conflict('device_state_transition', `a ${device.state} device cannot become ${state}${device.state === 'revoked' ? ': revocation is final' : ''}`);
  }
  return deps.store.setDeviceState(
    device.uuid,
    state,
    why,
    auditOf(actor, { action: ACTION_OF[state], outcome: 'success', factoryId: factory.id, target: device.uuid, reason: why }),
  );
}

export async function deleteDevice(deps: AuthorityDeps, actor: Actor, factory: Factory, uuid: unknown): Promise<void> {
  const device = await requireDevice(deps, factory, uuid);
  await deps.store.deleteDevice(
    device.uuid,
    auditOf(actor, { action: 'device.deleted', outcome: 'success', factoryId: factory.id, target: device.uuid, details: { fingerprint256: device.certificateFingerprint } }),
  );
}

