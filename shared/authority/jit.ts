import { X509Certificate } from 'node:crypto';
import { forbidden, isTollgateError } from '../errors.js';
import { certificateInfoFromX509, isIssuedBy, OID, type CertificateInfo } from '../pki/index.js';
import type { DeviceAuthView, DeviceCa, Store } from '../store/types.js';
import { DEVICE_UUID } from './names.js';


/**
 * Just-in-time registration: an unknown device whose certificate one of its factory's active CAs
 * issued is enrolled on first contact, when that factory has opted in. TLS has already verified
 * the chain; this finds which CA of which factory issued it and holds the subject to that factory
 * (OU = factory name, CN = a UUID), so a factory's CA cannot register devices into another factory.
 *
 * Returns the new device, or null when JIT does not apply (the caller then answers device_unknown).
 */
export async function registerJustInTime(store: Store, der: Buffer, now: number): Promise<DeviceAuthView | null> {
  let cert: CertificateInfo;
  try {
    cert = certificateInfoFromX509(new X509Certificate(der));
  } catch (e) {
    if (isTollgateError(e)) return null;
    throw e;
  }
  const uuid = cert.subject.commonName;
  const factoryName = cert.subject.organizationalUnit;
  if (uuid === undefined || !DEVICE_UUID.test(uuid) || factoryName === undefined) return null;
  if (cert.isCa || !cert.extendedKeyUsage.includes(OID.clientAuth)) return null;
  const factory = await store.getFactoryByName(factoryName);
  if (!factory) return null;
  const settings = await store.getFactorySettings(factory.id);
  if (!settings || settings.jitMode === 'off') return null;
  // Disabled CAs register nobody new; revoked ones nobody at all.
  const cas = (await store.listDeviceCas({ factoryId: factory.id })).filter((c) => c.state === 'active');
  const ca: DeviceCa | undefined = cas.find((c) => isIssuedBy(cert, certificateInfoFromX509(new X509Certificate(c.certificatePem))));
  if (!ca) return null;
  if (settings.keyTypes !== null && !settings.keyTypes.includes(cert.key.algorithm)) {
    throw forbidden('key_type_not_allowed', `factory "${factory.name}" does not allow ${cert.key.algorithm} device keys`);
  }
  try {
    await store.insertDevice(
      {
        uuid,
        factoryId: factory.id,
        caId: ca.id,
        name: null,
        state: settings.jitMode,
        stateReason: settings.jitMode === 'pending' ? 'registered just in time; awaiting activation' : null,
        isTest: false,
        certificatePem: cert.pem,
        certificateFingerprint: cert.fingerprint256,
        publicKeyFingerprint: cert.publicKeyFingerprint,
        notAfter: cert.notAfter.getTime(),
        createdAt: now,
        updatedAt: now,
      },
      {
        actor: `device:${uuid}`,
        action: 'device.registered_jit',
        outcome: 'success',
        factoryId: factory.id,
        target: uuid,
        details: { caId: ca.id, state: settings.jitMode, fingerprint256: cert.fingerprint256, notAfter: cert.notAfter.toISOString() },
      },
    );
  } catch (e) {
    // Two first contacts at once: the other one registered it; judge the device as it now stands.
    if (!(isTollgateError(e) && e.code === 'device_exists')) throw e;
  }
  return store.getDevice(uuid);
}
