import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { authenticateRegistration, refuseRegistration, registerDevice, type AuthorityDeps } from '../shared/authority/index.js';
import { isTollgateError, TollgateError } from '../shared/errors.js';
import { fromBodyParser, sendError } from '../shared/http/errors.js';
import type { Logger } from '../shared/log.js';
import { renderSotaToml } from '../shared/sota-toml.js';

/**
 * Device self-registration at `POST /ota/devices/`, as lmp-device-register and fioup call it, so a
 * device's DEVICE_API differs from Foundries' only in its host. No client certificate is needed on
 * this route: the device has none yet; it presents a factory's registration token instead.
 *
 * The client's protocol, which this follows to the byte:
 * - it first checks the URL answers at all (HEAD, or GET for fioup): any status below 500 will do;
 * - it sends `OSF-TOKEN: <token>` (or `Authorization: Bearer <token, or its base64>`) and a JSON
 *   object whose values are all strings, `overrides` being `{"section": {"key": "<TOML value>"}}`;
 * - it wants 201 and writes every key of the answer as a file into its sota directory, so the
 *   answer holds exactly `root.crt`, `client.pem`, `client.chained` and `sota.toml`;
 * - on a refusal it prints `HTTP_<code>` and the answer's top-level string fields only, so refusals
 *   carry `code` and `message` at the top level (not Tollgate's usual nested `error` object).
 */

export interface RegistrationSettings {
  /** The gateway URL devices use: tls.server of the sota.toml. */
  gatewayUrl: string;
  /** The CA bundle of the gateway's server certificate: the device's root.crt. */
  rootCaPem: string;
  /** Registries the device's credential helper serves. */
  registries: readonly string[];
}

/** A CSR is a few hundred bytes; overrides a few dozen short lines. */
export const MAX_REGISTRATION_BYTES = 64 * 1024;

/** The token from `OSF-TOKEN`, or `Authorization: Bearer` (raw, or base64 as the OAuth flow encodes it). */
export function registrationSecret(req: Request): string | null {
  const osf = req.get('osf-token')?.trim();
  if (osf) return osf;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
  if (!bearer) return null;
  if (bearer.startsWith('tga_')) return bearer;
  const decoded = Buffer.from(bearer, 'base64').toString('utf8').trim();
  return decoded.startsWith('tga_') ? decoded : bearer;
}

/** The top-level `{code, message}` lmp-device-register can print. */
function refusal(res: express.Response, e: TollgateError): void {
  sendError(res.set('Cache-Control', 'no-store'), e, { code: e.code, message: e.message });
}

export function registrationRouter(deps: AuthorityDeps, settings: RegistrationSettings, log: Logger): express.Router {
  const router = express.Router();
  const json = express.json({ limit: MAX_REGISTRATION_BYTES, strict: true, type: () => true });
  const paths = ['/ota/devices', '/ota/devices/'];

  const register: RequestHandler = async (req, res) => {
    const source = req.socket.remoteAddress ?? null;
    // The token is checked before the body is read: nobody without one gets a CSR parsed.
    const token = await authenticateRegistration(deps, registrationSecret(req), source);
    try {
      if (!req.is('application/json')) throw new TollgateError('invalid_input', 'content_type_unsupported', 'the body must be application/json');
      await new Promise<void>((resolve, reject) => json(req, res, (e?: unknown) => (e ? reject(e) : resolve())));
    } catch (e) {
      // What the body parser refuses (size, syntax) is a use of the token too.
      await refuseRegistration(deps, token, source, (isTollgateError(e) ? e : fromBodyParser(e))?.code ?? 'body_invalid');
      throw e;
    }
    const { enrolled, sota } = await registerDevice(deps, token, req.body, source);
    res.status(201).set('Cache-Control', 'no-store').json({
      'root.crt': settings.rootCaPem,
      'client.pem': enrolled.certificatePem,
      'client.chained': `${enrolled.certificatePem}\n${enrolled.caCertificatePem}`,
      'sota.toml': renderSotaToml({ gateway: settings.gatewayUrl, registries: settings.registries, ...sota }),
    });
  };

  router.post(paths, register);
  // The reachability check: HEAD (lmp-device-register) or GET (fioup) must answer below 500.
  router.all(paths, (req, res) => {
    res.status(405).set('Allow', 'POST').json({ code: 'method_not_allowed', message: `${req.method} is not served here; register with POST` });
  });
  const errors: ErrorRequestHandler = (err, req, res, _next) => {
    const known = isTollgateError(err) ? err : fromBodyParser(err);
    if (known) return refusal(res, known);
    log.error({ err, method: req.method, path: req.path }, 'registration failed');
    res.status(500).json({ code: 'internal_error', message: 'internal error' });
  };
  router.use(paths, errors);
  return router;
}
