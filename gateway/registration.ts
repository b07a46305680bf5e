import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { authenticateRegistration, registerDevice, type AuthorityDeps } from '../shared/authority/index.js';
import { HTTP_STATUS, invalidInput, isTollgateError, TollgateError } from '../shared/errors.js';
import { fromBodyParser } from '../shared/http/errors.js';
import type { Logger } from '../shared/log.js';
import { checkOverrides, renderSotaToml } from '../shared/sota-toml.js';

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

const bodySchema = z
  .object({
    uuid: z.string().max(64),
    csr: z.string().max(16 * 1024),
    name: z.string().max(128).optional(),
    'hardware-id': z.string().max(128).optional(),
    'sota-config-dir': z.string().max(256).optional(),
    group: z.string().max(128).optional(),
    overrides: z.record(z.string().max(64), z.record(z.string().max(64), z.string().max(1024))).optional(),
  })
  // Whatever else a client version sends (use-ostree-server, ...) must still be a string; it is not used.
  .catchall(z.string().max(1024));

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue?.path.map(String).join('.') ?? '';
  return `${where === '' ? 'the body' : where}: ${issue?.message ?? 'invalid'} (every value is a string; overrides is {"section": {"key": "value"}})`;
}

const PRINTABLE = /^[^\u0000-\u001f\u007f]*$/;

function field(value: string | undefined, name: string): string | null {
  if (value === undefined || value === '') return null;
  if (!PRINTABLE.test(value)) throw invalidInput(`${name}_invalid`, `${name} must not contain control characters`);
  return value;
}

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
  res.status(HTTP_STATUS[e.kind]).set('Cache-Control', 'no-store').json({ code: e.code, message: e.message });
}

export function registrationRouter(deps: AuthorityDeps, settings: RegistrationSettings, log: Logger): express.Router {
  const router = express.Router();
  const json = express.json({ limit: MAX_REGISTRATION_BYTES, strict: true, type: () => true });
  const paths = ['/ota/devices', '/ota/devices/'];

  const register: RequestHandler = async (req, res) => {
    const source = req.socket.remoteAddress ?? null;
    // The token is checked before the body is read: nobody without one gets a CSR parsed.
    const token = await authenticateRegistration(deps, registrationSecret(req), source);
    if (!req.is('application/json')) {
      throw new TollgateError('invalid_input', 'content_type_unsupported', 'the body must be application/json');
    }
    await new Promise<void>((resolve, reject) => json(req, res, (e?: unknown) => (e ? reject(e) : resolve())));
    const parsed = bodySchema.safeParse(req.body);
    if (!parsed.success) throw invalidInput('body_invalid', describeIssue(parsed.error));
    const body = parsed.data;
    if (body.group !== undefined && body.group !== '') {
      throw invalidInput('group_not_supported', 'Tollgate has no device groups; register without --device-group');
    }
    const sotaConfigDir = field(body['sota-config-dir'], 'sota-config-dir') ?? '/var/sota';
    if (!sotaConfigDir.startsWith('/')) throw invalidInput('sota-config-dir_invalid', 'sota-config-dir must be an absolute path');
    const overrides = body.overrides ?? {};
    checkOverrides(overrides);
    const hardwareId = field(body['hardware-id'], 'hardware-id');

    const enrolled = await registerDevice(deps, token, { uuid: body.uuid, csr: body.csr, name: field(body.name, 'name'), hardwareId }, source);
    res.status(201).set('Cache-Control', 'no-store').json({
      'root.crt': settings.rootCaPem,
      'client.pem': enrolled.certificatePem,
      'client.chained': `${enrolled.certificatePem}\n${enrolled.caCertificatePem}`,
      'sota.toml': renderSotaToml({ gateway: settings.gatewayUrl, sotaConfigDir, hardwareId: hardwareId ?? '', registries: settings.registries, overrides }),
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
