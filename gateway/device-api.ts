import express, { type Request } from 'express';
import { announceNextKey, pendingNextKey, recordDeviceEvents, type AuthorityDeps } from '../shared/authority/index.js';
import { conflict, TollgateError } from '../shared/errors.js';
import type { DeviceAuthView } from '../shared/store/types.js';
import { identifiedCertificate } from './trust.js';
import type { IdentifyDevice } from './lifecycle.js';

/**
 * What a device asks about itself besides credentials, in the shape Foundries' device software
 * uses (fioconfig's certificate rotation, aktualizr-lite's events):
 *
 * - `GET /device`: who the device is, the certificate it presented, and whether a newer one waits;
 * - `PATCH /device` `{"next_pubkey": PEM}`: the rotation's lock (see authority/next-key.ts);
 * - `POST /events`: progress reports, kept in the audit trail;
 * - `GET /config`, `GET /config-device`: 204, "no configuration for this device", which fioconfig
 *   takes as success (Tollgate distributes no device configuration); `PATCH /config` is refused.
 */

export const MAX_DEVICE_BODY_BYTES = 64 * 1024;

export interface DeviceApiOptions {
  deps: AuthorityDeps;
  device: IdentifyDevice;
}

const sourceOf = (req: Request) => req.socket.remoteAddress ?? null;

export function deviceApiRouter({ deps, device }: DeviceApiOptions): express.Router {
  const router = express.Router();
  const json = express.json({ limit: MAX_DEVICE_BODY_BYTES, strict: true, type: () => true });
  const readJson = (req: Request, res: express.Response) => {
    if (!req.is('application/json')) throw new TollgateError('invalid_input', 'content_type_unsupported', 'the body must be application/json');
    return new Promise<unknown>((resolve, reject) => json(req, res, (e?: unknown) => (e ? reject(e) : resolve(req.body))));
  };

  router.get(['/device', '/device/'], async (req, res) => {
    const dev = await device(req, res, 'device.refused');
    if (!dev) return;
    res.set('Cache-Control', 'no-store').json(await describe(deps, dev, req));
  });

  router.patch(['/device', '/device/'], async (req, res) => {
    const dev = await device(req, res, 'device.refused');
    if (!dev) return;
    const body = (await readJson(req, res)) as { next_pubkey?: unknown } | null;
    const nextKey = await announceNextKey(deps, dev, body?.next_pubkey, sourceOf(req));
    res.set('Cache-Control', 'no-store').json({ ...(await describe(deps, dev, req)), nextKey });
  });

  router.post(['/events', '/events/'], async (req, res) => {
    const dev = await device(req, res, 'device.refused');
    if (!dev) return;
    const recorded = await recordDeviceEvents(deps, dev, await readJson(req, res), sourceOf(req));
    res.json({ recorded });
  });

  router.get(['/config', '/config-device'], async (req, res) => {
    const dev = await device(req, res, 'device.refused');
    if (!dev) return;
    res.status(204).end();
  });

  router.patch(['/config', '/config/'], async (req, res) => {
    const dev = await device(req, res, 'device.refused');
    if (!dev) return;
    throw conflict('device_config_unsupported', 'this gateway keeps no device configuration');
  });

  return router;
}

/** The device as the request shows it: the certificate it presented, not merely the newest one. */
async function describe(deps: AuthorityDeps, dev: DeviceAuthView, req: Request) {
  const presented = identifiedCertificate(req);
  const newer = presented.fingerprint256 !== dev.certificateFingerprint;
  return {
    uuid: dev.uuid,
    factory: dev.factoryName,
    name: dev.name,
    state: dev.state,
    test: dev.isTest,
    certificate: { fingerprint256: presented.fingerprint256, notAfter: new Date(presented.notAfter).toISOString() },
    // A re-enrollment issued a certificate this device has not used yet.
    renewal: newer
      ? { pending: true, certificate: { fingerprint256: dev.certificateFingerprint, notAfter: new Date(dev.notAfter).toISOString() } }
      : { pending: false },
    nextKey: await pendingNextKey(deps, dev),
  };
}
