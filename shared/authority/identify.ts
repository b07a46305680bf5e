import { forbidden, unauthenticated } from '../errors.js';
import type { DeviceAuthView, Store } from '../store/types.js';
import { registerJustInTime } from './jit.js';
import { DEVICE_UUID } from './names.js';

/** What the TLS layer established about the client, normalised. */
export interface PresentedCertificate {
  /** SHA-256 of the DER, lower-case hex without colons. */
  fingerprint256: string;
  commonName: string | undefined;
  organizationalUnit: string | undefined;
  notAfter: number;
  /** The DER, when the caller has it: just-in-time registration needs the whole certificate. */
  der?: Buffer;
}

/**
 * Decides whether a TLS client that presented `cert` (already chain-verified by TLS against the
 * registered CAs) is an enrolled, active device. Runs on every request: TLS keep-alive and session
 * resumption reuse the handshake's verdict, so a revocation would otherwise not be seen.
 *
 * Refusals carry the reason as their code; the gateway audits and counts them.
 */
export async function identifyDevice(store: Store, cert: PresentedCertificate, now: number): Promise<DeviceAuthView> {
  if (cert.notAfter <= now) throw unauthenticated('certificate_expired', 'the client certificate has expired');
  const uuid = cert.commonName;
  if (uuid === undefined || !DEVICE_UUID.test(uuid)) {
    throw forbidden('device_unknown', 'the client certificate does not name a device (CN must be the device UUID)');
  }
  let device = await store.getDevice(uuid);
  if (!device) {
    // A rotated-out certificate must not come back through just-in-time registration after its
    // device was deleted. (The deny-list is only consulted off the common path: a device's current
    // or pending-previous certificate is never on it.)
    await refuseRetired(store, cert);
    if (cert.der) device = await registerJustInTime(store, cert.der, now);
  }
  if (!device) throw forbidden('device_unknown', 'no device is enrolled under this certificate');
  // The enrolled certificate is pinned: a different certificate with the same UUID, even from the
  // same CA, is somebody else. After a rotation the replaced certificate is accepted until the
  // device first presents the new one.
  if (device.certificateFingerprint !== cert.fingerprint256 && device.previousCertificateFingerprint !== cert.fingerprint256) {
    await refuseRetired(store, cert);
    throw forbidden('certificate_mismatch', 'this certificate is not the one enrolled for the device');
  }
  if (device.certificateFingerprint === cert.fingerprint256 && device.previousCertificateFingerprint !== null) {
    await store.retirePreviousCertificate(device.uuid, device.previousCertificateFingerprint, {
      actor: `device:${device.uuid}`,
      action: 'device.certificate_superseded',
      outcome: 'success',
      factoryId: device.factoryId,
      target: device.uuid,
      details: { fingerprint256: device.previousCertificateFingerprint, supersededBy: cert.fingerprint256 },
    });
    device = { ...device, previousCertificateFingerprint: null };
  }
  if (cert.organizationalUnit !== device.factoryName) {
    throw forbidden('factory_mismatch', 'the certificate OU does not match the device factory');
  }
  if (device.caState === 'revoked') throw forbidden('ca_revoked', 'the CA that issued this device certificate is revoked');
  switch (device.state) {
    case 'active':
      return device;
    case 'pending':
      throw forbidden('device_pending', 'the device is awaiting activation by a factory admin');
    case 'disabled':
      throw forbidden('device_disabled', 'the device is disabled');
    case 'revoked':
      throw forbidden('device_revoked', 'the device is revoked');
  }
}

/** A rotated-out certificate stays refused whatever its validity says, with a reason that says so. */
async function refuseRetired(store: Store, cert: PresentedCertificate): Promise<void> {
  if (await store.isCertificateRetired(cert.fingerprint256)) {
    throw forbidden('certificate_superseded', 'this certificate was replaced by a newer one; use the renewed certificate');
  }
}
