import express, { type Request, type Response } from 'express';
import { renewDeviceCertificate, type AuthorityDeps, type IdentificationContext } from '../shared/authority/index.js';
import { invalidInput, notFound, TollgateError } from '../shared/errors.js';
import { certsOnlyPkcs7, derToPem } from '../shared/pki/index.js';
import type { DeviceAuthView } from '../shared/store/types.js';
import { identifiedCertificate } from './trust.js';

/**
 * Certificate renewal on the gateway, for devices identified by their current certificate:
 *
 * - EST (RFC 7030): `GET /.well-known/est/cacerts` ("Distribution of CA Certificates") and
 *   `POST /.well-known/est/simplereenroll` ("Simple Re-enrollment of Clients"). Requests carry a
 *   base64 DER PKCS#10 as application/pkcs10; answers are base64 certs-only PKCS#7.
 * - `POST /device/renew`: the same re-enrollment as JSON with PEM, for clients without a CMS parser.
 */

/** A CSR is well under 8 KiB even for RSA-4096 with extensions. */
export const MAX_CSR_BYTES = 16 * 1024;

/** Resolves the requesting device or answers the refusal itself (the gateway's `device()`). */
export type IdentifyDevice = (req: Request, res: Response, action: IdentificationContext['action']) => Promise<DeviceAuthView | null>;

/**
 * `rfc7030`: 200 with `application/pkcs7-mime; smime-type=certs-only`. `foundries`: what Foundries'
 * estserver answers re-enrollment with, 201 and exactly `application/pkcs7-mime`, which fioconfig
 * mp-96 and older insist on (later versions take both). /cacerts answers 200 either way.
 */
export type EstResponse = 'rfc7030' | 'foundries';

export interface LifecycleRouterOptions {
  deps: AuthorityDeps;
  device: IdentifyDevice;
  est: EstResponse;
}

const PKCS7_CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
const PKCS7 = 'application/pkcs7-mime';

function sourceOf(req: Request): string | null {
  return req.socket.remoteAddress ?? null;
}

/** Base64 in 64-column lines, as EST answers are usually written. */
function base64Lines(der: Buffer): string {
  return `${der.toString('base64').replace(/.{1,64}/g, '$&\r\n')}`;
}

async function sendPkcs7(res: Response, pems: string[], status = 200, contentType = PKCS7_CERTS_ONLY): Promise<void> {
  const der = await certsOnlyPkcs7(pems);
  res.set('Cache-Control', 'no-store');
  // RFC 7030 "Distribution of CA Certificates": the body is base64 with this transfer encoding.
  res.set('Content-Transfer-Encoding', 'base64');
  // A Buffer, not a string: express appends "; charset=utf-8" to the type of a string body, and
  // an exact match on the media type (fioconfig's) then fails.
  res.status(status).set('Content-Type', contentType).send(Buffer.from(base64Lines(der), 'latin1'));
}

/**
 * The CSR of an EST body: base64 DER (what RFC 7030 specifies for application/pkcs10), or PEM,
 * accepted for convenience. Returned as PEM for the authority's parser.
 */
export function csrPemFromBody(body: Buffer): string {
  const text = body.toString('latin1').trim();
  if (text.length === 0) throw invalidInput('csr_missing', 'the request body must hold a PKCS#10 certificate signing request');
  if (text.startsWith('-----BEGIN')) return text;
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw invalidInput('csr_invalid', 'the body is neither base64 DER nor PEM of a PKCS#10 certificate signing request');
  }
  return derToPem(Buffer.from(compact, 'base64'), 'CERTIFICATE REQUEST');
}

const CSR_TYPES = ['application/pkcs10', 'application/x-pem-file', 'text/plain'];

/** The renewing device, with the fingerprint of the certificate it authenticated with. */
async function renewingDevice(opts: LifecycleRouterOptions, req: Request, res: Response) {
  const device = await opts.device(req, res, 'device.renew_refused');
  if (!device) return null;
  return { device, presented: identifiedCertificate(req).fingerprint256 };
}

export function lifecycleRouter(opts: LifecycleRouterOptions): express.Router {
  const { deps } = opts;

  /** Renews; the authority leaves a denied record in the device's history when it refuses. */
  const renew = (req: Request, who: { device: DeviceAuthView; presented: string }, csrPem: unknown) =>
    renewDeviceCertificate(deps, who.device, who.presented, csrPem, sourceOf(req));

  const router = express.Router();
  const raw = express.raw({ type: () => true, limit: MAX_CSR_BYTES });
  const json = express.json({ limit: MAX_CSR_BYTES, strict: true, type: 'application/json' });

  // RFC 7030 lets /cacerts answer anonymous clients; here it answers devices only, because the
  // gateway serves many factories and the chain a device needs is its own CA's, known only once the
  // device is identified (an anonymous answer would also list every factory's CAs).
  router.get('/.well-known/est/cacerts', async (req, res) => {
    const device = await opts.device(req, res, 'device.refused');
    if (!device) return;
    const ca = await deps.store.getDeviceCa(device.caId);
    if (!ca) throw notFound('ca_not_found', 'the device CA is not registered');
    await sendPkcs7(res, [ca.certificatePem]);
  });

  router.post('/.well-known/est/simplereenroll', async (req, res) => {
    // Identify before reading the body: nobody without a device certificate gets a CSR parsed.
    const who = await renewingDevice(opts, req, res);
    if (!who) return;
    if (!req.is(CSR_TYPES)) {
      throw new TollgateError('invalid_input', 'content_type_unsupported', 'the CSR must be sent as application/pkcs10 (base64 DER, or PEM)');
    }
    await new Promise<void>((resolve, reject) => raw(req, res, (e?: unknown) => (e ? reject(e) : resolve())));
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const renewed = await renew(req, who, csrPemFromBody(body));
    if (opts.est === 'foundries') await sendPkcs7(res, [renewed.certificatePem], 201, PKCS7);
    else await sendPkcs7(res, [renewed.certificatePem]);
  });

  router.post(['/device/renew', '/device/renew/'], async (req, res) => {
    const who = await renewingDevice(opts, req, res);
    if (!who) return;
    if (!req.is('application/json')) throw new TollgateError('invalid_input', 'content_type_unsupported', 'the body must be application/json: {"csr": "<PEM>"}');
    await new Promise<void>((resolve, reject) => json(req, res, (e?: unknown) => (e ? reject(e) : resolve())));
    const body = req.body as { csr?: unknown } | undefined;
    const renewed = await renew(req, who, body?.csr);
    res.set('Cache-Control', 'no-store');
    res.json({ certificate: renewed.certificatePem, caCertificate: renewed.caCertificatePem, notAfter: renewed.notAfter.toISOString() });
  });

  return router;
}
