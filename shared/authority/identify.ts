import { forbidden, isTollgateError, TollgateError } from '../errors.js';
import type { DeviceAuthView } from '../store/types.js';
import { commit, record, type RefusalAction } from './events.js';
import type { AuthorityDeps } from './context.js';
import type { IssuedRefusal } from './device-trust.js';
import { registerJustInTime } from './enrollment/jit.js';
import { DEVICE_UUID } from './names.js';
import { refusalError, type RefusalReason } from './refusals.js';
import { deviceStanding, type PresentedCertificate } from './standing.js';

/** What the gateway established about a TLS client: a certificate it trusts (device-trust.ts), or why it has none. */
export type PresentedClient = { certificate: PresentedCertificate } | ({ refusal: RefusalReason; detail?: string } & Partial<IssuedRefusal>);

export interface IdentificationContext {
  /** The refusal event a refusal is recorded as, by route. */
  action: Exclude<RefusalAction, 'realm.refused'>;
  source: string | null;
}

/**
 * Identifies the device a TLS client is (its certificate already verified against the CAs of the
 * factory it names, device-trust.ts), on every request: TLS keep-alive and session resumption reuse the handshake's
 * verdict, so a revocation would otherwise not be seen. Registers it just in time when its factory
 * asks for that. Every refusal is recorded (`context.action`) and thrown as a 401/403 TollgateError.
 */
export async function identifyDevice(deps: AuthorityDeps, client: PresentedClient, context: IdentificationContext): Promise<DeviceAuthView> {
  if ('refusal' in client) {
    // Under the factory whose CA signed the certificate, when one did: its audit trail shows it.
    const claimed = client.factoryId !== undefined ? (client.commonName ?? null) : null;
    await record(deps, {
      type: context.action,
      actor: claimed ? `device:${claimed}` : 'anonymous',
      source: context.source,
      factoryId: client.factoryId ?? null,
      target: claimed,
      reason: client.refusal,
      details: client.fingerprint256 !== undefined ? { fingerprint256: client.fingerprint256 } : null,
    });
    throw refusalError(client.refusal, client.detail);
  }
  const cert = client.certificate;
  let outcome: Judgement;
  try {
    outcome = await judge(deps, cert);
  } catch (e) {
    // A certificate that just-in-time registration's policy refuses is refused like any other (403).
    if (!isTollgateError(e) || e.kind !== 'invalid_input') throw e;
    outcome = { device: null, refusal: forbidden(e.code, e.message) };
  }
  if (outcome.refusal) {
    const claimed = cert.commonName ?? null;
    await record(deps, {
      type: context.action,
      actor: claimed ? `device:${claimed}` : 'anonymous',
      source: context.source,
      factoryId: await refusedFactory(deps, outcome, cert),
      target: claimed,
      reason: outcome.refusal.code,
      details: { fingerprint256: cert.fingerprint256 },
    });
    throw outcome.refusal;
  }
  return outcome.device!;
}

interface Judgement {
  device: DeviceAuthView | null;
  refusal: TollgateError | null;
}

/**
 * The factory a refusal is recorded under, so that the factory's audit trail and `device show`
 * have it: the device's, or else the factory the certificate names, which is proved: the
 * certificate reached identification only because one of that factory's CAs issued it.
 */
async function refusedFactory(deps: AuthorityDeps, outcome: Judgement, cert: PresentedCertificate): Promise<string | null> {
  if (outcome.device && outcome.device.factoryName === cert.organizationalUnit) return outcome.device.factoryId;
  if (cert.organizationalUnit === undefined) return null;
  return (await deps.store.getFactoryByName(cert.organizationalUnit))?.id ?? null;
}

async function judge(deps: AuthorityDeps, cert: PresentedCertificate): Promise<Judgement> {
  const now = deps.now();
  const uuid = cert.commonName !== undefined && DEVICE_UUID.test(cert.commonName) ? cert.commonName : null;
  if (uuid === null) {
    const reason = await deviceStanding({ now, device: null, presented: cert });
    return { device: null, refusal: refusalError(reason ?? 'device_unknown', reason === 'device_unknown' ? 'the certificate CN must be the device UUID' : undefined) };
  }
  // The deny-list of rotated-out certificates is read only off the common path: a device's current
  // or pending-previous certificate is never on it.
  let retired: boolean | undefined;
  const isRetired = async () => (retired ??= await deps.store.isCertificateRetired(cert.fingerprint256));
  let device = await deps.store.getDevice(uuid);
  if (!device) {
    // A deleted device does not come back: not just in time, not with any certificate naming it.
    // Another factory's tombstone is told nothing more than an unknown UUID.
    const tombstone = await deps.store.getDeviceTombstone(uuid);
    if (tombstone?.factoryName === cert.organizationalUnit) return { device: null, refusal: refusalError('device_deleted') };
    // A rotated-out certificate must not come back through just-in-time registration either; nor
    // may an expired one register.
    if (tombstone === null && cert.der && cert.notAfter > now && !(await isRetired())) device = await registerJustInTime(deps, cert.der);
  }
  const reason = await deviceStanding({ now, device, presented: cert, isRetired });
  if (device && reason !== 'certificate_expired' && reason !== 'certificate_mismatch' && reason !== 'certificate_superseded') {
    device = await supersedePrevious(deps, device, cert);
  }
  return { device, refusal: reason === null ? null : refusalError(reason) };
}

/**
 * The first request with the renewed certificate retires the one it replaced (once, whichever
 * request gets there first), so the old certificate is refused from then on.
 */
async function supersedePrevious(deps: AuthorityDeps, device: DeviceAuthView, cert: PresentedCertificate): Promise<DeviceAuthView> {
  const previous = device.previousCertificateFingerprint;
  if (device.certificateFingerprint !== cert.fingerprint256 || previous === null) return device;
  await commit(
    deps,
    {
      type: 'device.certificate_superseded',
      actor: `device:${device.uuid}`,
      factoryId: device.factoryId,
      target: device.uuid,
      details: { fingerprint256: previous, supersededBy: cert.fingerprint256 },
    },
    (audit) => deps.store.retirePreviousCertificate(device.uuid, previous, audit),
    { publishedIf: (retired) => retired },
  );
  return { ...device, previousCertificateFingerprint: null };
}
