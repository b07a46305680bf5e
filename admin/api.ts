import type { Request, Response } from 'express';
import { z } from 'zod';
import type { CaState, DeviceState } from '../shared/store/types.js';
import type { ConsoleAuth } from './console-auth.js';
import {
  auditAllSchema,
  auditSchema,
  operatorTokenSchema,
  signingKeySchema,
  caSchema,
  deviceDetailSchema,
  deviceSchema,
  factorySchema,
  pageSchema,
  tokenSchema,
  type AuditJson,
} from './present.js';
import {
  addKeyBody,
  auditExportQuery,
  createFactoryBody,
  operatorTokenBody,
  auditQuery,
  bulkEnrollBody,
  caBody,
  createTokenBody,
  enrollBody,
  listDevicesQuery,
  noQuery,
  oidcCallbackQuery,
  settingsBody,
  signInBody,
  stateChangeBody,
} from './requests.js';
import type { AdminService, Principal } from './service.js';

/**
 * The admin API as one table: each route's method, path, request schemas, answers and handler.
 * The HTTP app mounts the table (validating every request against its schemas) and the OpenAPI
 * document is generated from it, so the description cannot drift from what is served.
 */

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface Answer {
  description: string;
  /** JSON body; absent: none (204) or what `content` names. */
  schema?: z.ZodType;
  /** Other media types (downloads). */
  content?: Record<string, z.ZodType>;
  /** A redirect's target, for the description. */
  headers?: Record<string, string>;
}

export interface Call<Q, B> {
  req: Request;
  res: Response;
  principal: Principal;
  query: Q;
  body: B;
  source: string | null;
}

export interface Route<Q = unknown, B = unknown> {
  method: Method;
  /** Express syntax: /factories/:factory/devices */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** `none`: no credentials (sign-in, the description); else a bearer token or a console session. */
  auth: 'none' | 'required';
  /** Scopes that allow the call (any of them), for the description; AdminService enforces them. */
  scopes?: readonly string[];
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Request bodies larger than this are refused with 413 (default MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Success answers by status. Every route may also answer the error shape with 4xx. */
  answers: Record<number, Answer>;
  handle(call: Call<Q, B>): Promise<void>;
}

function route<Q, B>(r: Route<Q, B>): Route {
  return r as unknown as Route;
}

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }) })
  .meta({ title: 'Error' });

const deviceCountsNote = 'with how many devices each CA issued, by state';
const whoamiSchema = z.union([
  z.object({ kind: z.literal('operator'), tokenId: z.string().optional().describe('the operator token used, if any') }),
  z.object({ kind: z.literal('token'), token: tokenSchema, factory: z.string().nullable() }),
  z.object({ kind: z.literal('person'), identity: z.string(), factory: z.string().nullable(), scopes: z.array(z.string()) }),
]);
const settingsSchema = z.object({
  factory: z.string(),
  jitMode: z.enum(['off', 'pending', 'active']),
  certMaxDays: z.number().int(),
  testCertMaxHours: z.number().int(),
  keyTypes: z.array(z.string()),
  updatedAt: z.string().nullable(),
  limits: z.object({ certMaxDays: z.number().int(), testCertMaxHours: z.number().int(), keyTypes: z.array(z.string()) }).describe("the operator's limits (pki.*): a factory may narrow them, never widen them"),
});
const enrollmentSchema = z.object({
  device: deviceSchema,
  certificate: z.string().describe('PEM device certificate'),
  caCertificate: z.string().describe('PEM of the CA that issued it'),
  gatewayCa: z.string().describe('PEM bundle the device verifies the gateway with'),
  gateway: z.string().describe('the gateway URL'),
});
const bulkRowSchema = z.union([
  z.object({ row: z.number().int(), uuid: z.string(), ok: z.literal(true) }),
  z.object({ row: z.number().int(), uuid: z.string().nullable(), ok: z.literal(false), code: z.string(), message: z.string() }),
]);
const bulkSchema = z.object({ enrolled: z.number().int(), results: z.array(bulkRowSchema), devices: z.array(deviceSchema) });
const createdTokenSchema = tokenSchema.extend({ secret: z.string().describe('shown only in this answer') });
const sessionSchema = z.object({
  kind: z.enum(['operator', 'token', 'person']),
  identity: z.string().describe('how the audit trail names the person: token:<id>, oidc:<account> or operator'),
  factory: z.string().nullable(),
  scopes: z.array(z.string()),
  csrfToken: z.string().describe('send as X-CSRF-Token with every state-changing request of this session'),
  expiresAt: z.string(),
  idleSeconds: z.number().int(),
});
const sessionOptionsSchema = z.object({ token: z.literal(true), oidc: z.boolean() });
const registrySettingsSchema = z
  .object({ gateway: z.string(), tokenKeyHint: z.string(), keys: z.array(signingKeySchema) })
  .catchall(z.unknown())
  .describe("the realm's published token settings (realm, service, issuer), the gateway URL and every signing key")
  .meta({ title: 'RegistrySettings' });
const createdOperatorTokenSchema = operatorTokenSchema.extend({ secret: z.string().describe('shown only in this answer') });
const codeSchema = z.object({ code: z.string(), expiresAt: z.string() });

const READ = ['devices:read', 'devices:write'] as const;
const WRITE = ['devices:write'] as const;

const STATE_ACTIONS: [verb: 'disable' | 'enable' | 'revoke', state: DeviceState & CaState][] = [
  ['disable', 'disabled'],
  ['enable', 'active'],
  ['revoke', 'revoked'],
];

/** The CSV export's columns, in order. */
const CSV_COLUMNS = ['id', 'at', 'actor', 'action', 'outcome', 'target', 'reason', 'source', 'details'] as const;

/** One CSV field (RFC 4180); a leading = + - @ is defused so spreadsheets do not run it as a formula. */
function csvField(value: unknown): string {
  let s = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

async function sendExport(res: Response, records: AsyncIterable<AuditJson>, format: 'ndjson' | 'csv', factory: string): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  res.status(200);
  res.set('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
  res.set('Content-Disposition', `attachment; filename="tollgate-audit-${factory}-${stamp}.${format}"`);
  if (format === 'csv') res.write(`${CSV_COLUMNS.join(',')}\r\n`);
  for await (const r of records) {
    const line = format === 'csv' ? `${CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\r\n` : `${JSON.stringify(r)}\n`;
    if (!res.write(line)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

type StateChange = Call<unknown, z.infer<typeof stateChangeBody>>;

/** POST …/<resource>/:<key>/disable|enable|revoke, one route each: a device's or a CA's state. */
function stateRoutes(
  resource: 'cas' | 'devices',
  key: string,
  schema: z.ZodType,
  summaries: Record<(typeof STATE_ACTIONS)[number][0], string>,
  change: (call: StateChange, state: DeviceState & CaState) => Promise<unknown>,
): Route[] {
  const noun = resource === 'cas' ? 'Ca' : 'Device';
  return STATE_ACTIONS.map(([verb, state]) =>
    route({
      method: 'post',
      path: `/factories/:factory/${resource}/:${key}/${verb}`,
      operationId: `${verb}${noun}`,
      summary: summaries[verb],
      tag: resource,
      auth: 'required',
      scopes: WRITE,
      body: stateChangeBody,
      answers: { 200: { description: `the ${noun === 'Ca' ? 'CA' : 'device'}`, schema } },
      async handle(call) {
        call.res.json(await change(call, state));
      },
    }),
  );
}

export interface ApiOptions {
  service: AdminService;
  consoleAuth: ConsoleAuth;
  enrollment: { gatewayCa: string; gateway: string };
  /** The served OpenAPI document (built from this table). */
  openapi: () => unknown;
}

export function adminRoutes({ service, consoleAuth, enrollment, openapi }: ApiOptions): Route[] {
  const factoryParam = (req: Request) => req.params.factory;
  return [
    // ---- description and sign-in (no credentials) ----
    route({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'this description (OpenAPI 3.1)',
      tag: 'meta',
      auth: 'none',
      query: noQuery,
      answers: { 200: { description: 'the OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
      async handle({ res }) {
        res.json(openapi());
      },
    }),
    route({
      method: 'get',
      path: '/session/options',
      operationId: 'getSignInOptions',
      summary: 'how the console can sign in here',
      tag: 'session',
      auth: 'none',
      query: noQuery,
      answers: { 200: { description: 'sign-in methods', schema: sessionOptionsSchema } },
      async handle({ res }) {
        res.json({ token: true, oidc: consoleAuth.oidcEnabled });
      },
    }),
    route({
      method: 'post',
      path: '/session',
      operationId: 'signIn',
      summary: 'open a console session with an admin API token or a one-time code; sets the session cookie',
      tag: 'session',
      auth: 'none',
      body: signInBody,
      answers: { 201: { description: 'signed in', schema: sessionSchema } },
      async handle({ res, body, source }) {
        res.status(201).json(await consoleAuth.signIn(res, body, source));
      },
    }),
    route({
      method: 'get',
      path: '/session/oidc',
      operationId: 'startOidcSignIn',
      summary: "start a console sign-in with the realm's OpenID Connect provider",
      tag: 'session',
      auth: 'none',
      query: noQuery,
      answers: { 302: { description: 'to the provider', headers: { Location: 'the authorization URL' } } },
      async handle({ res }) {
        res.redirect(302, await consoleAuth.startOidc(res));
      },
    }),
    route({
      method: 'get',
      path: '/session/oidc/callback',
      operationId: 'finishOidcSignIn',
      summary: 'where the provider sends the browser back; opens the session',
      tag: 'session',
      auth: 'none',
      query: oidcCallbackQuery,
      answers: { 303: { description: 'to the console (signed in, or with ?error=<code>)', headers: { Location: '/ or /signin?error=...' } } },
      async handle({ req, res, source }) {
        try {
          await consoleAuth.finishOidc(req, res, source);
          res.redirect(303, '/');
        } catch (e) {
          const code = (e as { code?: unknown }).code;
          res.redirect(303, `/signin?error=${encodeURIComponent(typeof code === 'string' ? code : 'oidc_sign_in_failed')}`);
        }
      },
    }),

    // ---- the session and who is calling ----
    route({
      method: 'get',
      path: '/session',
      operationId: 'getSession',
      summary: "the console session: who, which factory and scopes, and its CSRF token",
      tag: 'session',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the session', schema: sessionSchema } },
      async handle({ res, principal }) {
        res.json(await consoleAuth.view(res, principal));
      },
    }),
    route({
      method: 'delete',
      path: '/session',
      operationId: 'signOut',
      summary: 'end the console session',
      tag: 'session',
      auth: 'required',
      answers: { 204: { description: 'signed out' } },
      async handle({ res, principal }) {
        await consoleAuth.signOut(res, principal);
        res.status(204).end();
      },
    }),
    route({
      method: 'get',
      path: '/whoami',
      operationId: 'whoami',
      summary: 'who the credentials stand for',
      tag: 'session',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the caller', schema: whoamiSchema } },
      async handle({ res, principal }) {
        res.json(await service.whoami(principal));
      },
    }),
    route({
      method: 'get',
      path: '/factories',
      operationId: 'listFactories',
      summary: "the factories the caller may act on (the operator's: all)",
      tag: 'factories',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'factories', schema: pageSchema(factorySchema, 'FactoryPage') } },
      async handle({ res, principal }) {
        res.json(await service.listFactories(principal));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory',
      operationId: 'getFactory',
      summary: 'a factory',
      tag: 'factories',
      auth: 'required',
      scopes: ['devices:read', 'devices:write', 'devices:test', 'containers:read', 'containers:write', 'tokens:write'],
      query: noQuery,
      answers: { 200: { description: 'the factory', schema: factorySchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getFactory(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/settings',
      operationId: 'getFactorySettings',
      summary: "the factory's JIT mode and certificate policy, with the operator's limits",
      tag: 'factories',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'settings in force', schema: settingsSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getFactorySettings(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'patch',
      path: '/factories/:factory/settings',
      operationId: 'updateFactorySettings',
      summary: 'change settings (absent fields keep their value; null restores the default)',
      tag: 'factories',
      auth: 'required',
      scopes: WRITE,
      body: settingsBody,
      answers: { 200: { description: 'settings in force', schema: settingsSchema } },
      async handle({ req, res, principal, body }) {
        res.json(await service.updateFactorySettings(principal, factoryParam(req), body));
      },
    }),

    // ---- CAs ----
    route({
      method: 'get',
      path: '/factories/:factory/cas',
      operationId: 'listCas',
      summary: `the factory's device CAs, ${deviceCountsNote}`,
      tag: 'cas',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'every CA of the factory (one page)', schema: pageSchema(caSchema, 'DeviceCaPage') } },
      async handle({ req, res, principal }) {
        res.json(await service.listCas(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/cas',
      operationId: 'addCa',
      summary: 'create an online CA, or register an external one (with proof of possession of its key)',
      tag: 'cas',
      auth: 'required',
      scopes: WRITE,
      body: caBody,
      answers: { 201: { description: 'the new CA', schema: caSchema } },
      async handle({ req, res, principal, body }) {
        const ca =
          body.kind === 'online'
            ? await service.createOnlineCa(principal, factoryParam(req), { commonName: body.commonName, days: body.days })
            : await service.addExternalCa(principal, factoryParam(req), body.certificate, body.verificationCertificate);
        res.status(201).json(ca);
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/cas/registration-code',
      operationId: 'createCaRegistrationCode',
      summary: 'a single-use code (valid one hour) for proving possession of an external CA key',
      tag: 'cas',
      auth: 'required',
      scopes: WRITE,
      answers: { 201: { description: 'the code: sign a certificate whose CN is this code with the CA key', schema: codeSchema } },
      async handle({ req, res, principal }) {
        res.status(201).json(await service.createCaRegistrationCode(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/cas/:id',
      operationId: 'getCa',
      summary: `a device CA, ${deviceCountsNote}`,
      tag: 'cas',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'the CA', schema: caSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getCa(principal, factoryParam(req), req.params.id));
      },
    }),
    ...stateRoutes('cas', 'id', caSchema, {
      disable: 'stop a CA from enrolling new devices (devices it issued keep working)',
      enable: 'enable a disabled CA',
      revoke: 'revoke a CA for good: every device it issued is cut off',
    }, (call, state) => service.setCaState(call.principal, call.req.params.factory, call.req.params.id, state, call.body.reason)),

    // ---- devices ----
    route({
      method: 'get',
      path: '/factories/:factory/devices',
      operationId: 'listDevices',
      summary: 'devices by UUID, filtered by state, test or not, and a search text',
      tag: 'devices',
      auth: 'required',
      scopes: READ,
      query: listDevicesQuery,
      answers: { 200: { description: 'a page of devices', schema: pageSchema(deviceSchema, 'DevicePage') } },
      async handle({ req, res, principal, query }) {
        res.json(await service.listDevices(principal, factoryParam(req), query));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/devices',
      operationId: 'enrollDevice',
      summary: 'enroll a device from its CSR or a certificate a factory CA issued (test devices: devices:test)',
      tag: 'devices',
      auth: 'required',
      scopes: ['devices:write', 'devices:test'],
      body: enrollBody,
      answers: { 201: { description: 'the enrolled device and what it needs', schema: enrollmentSchema } },
      async handle({ req, res, principal, body }) {
        const result = await service.enroll(principal, factoryParam(req), body);
        res.status(201).json({ ...result, ...enrollment });
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/devices/bulk',
      operationId: 'enrollDevices',
      summary: 'enroll many devices at once: all rows or none (400 bulk_rows_refused lists each row)',
      tag: 'devices',
      auth: 'required',
      scopes: WRITE,
      body: bulkEnrollBody,
      // 500 rows of a few KiB each.
      maxBodyBytes: 4 * 1024 * 1024,
      answers: { 201: { description: 'every row enrolled', schema: bulkSchema } },
      async handle({ req, res, principal, body }) {
        res.status(201).json(await service.enrollBulk(principal, factoryParam(req), body.rows));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/devices/:uuid',
      operationId: 'getDevice',
      summary: 'a device, its certificate and its history',
      tag: 'devices',
      auth: 'required',
      scopes: READ,
      query: noQuery,
      answers: { 200: { description: 'the device', schema: deviceDetailSchema } },
      async handle({ req, res, principal }) {
        res.json(await service.getDevice(principal, factoryParam(req), req.params.uuid));
      },
    }),
    route({
      method: 'delete',
      path: '/factories/:factory/devices/:uuid',
      operationId: 'deleteDevice',
      summary: 'delete a device record (its history stays in the audit trail)',
      tag: 'devices',
      auth: 'required',
      scopes: WRITE,
      answers: { 204: { description: 'deleted' } },
      async handle({ req, res, principal }) {
        await service.deleteDevice(principal, factoryParam(req), req.params.uuid);
        res.status(204).end();
      },
    }),
    ...stateRoutes('devices', 'uuid', deviceSchema, {
      disable: 'disable a device: it gets no tokens until enabled',
      enable: 'enable a disabled or pending device',
      revoke: 'revoke a device for good: its tokens die at once',
    }, (call, state) => service.setDeviceState(call.principal, call.req.params.factory, call.req.params.uuid, state, call.body.reason)),

    // ---- tokens ----
    route({
      method: 'get',
      path: '/factories/:factory/tokens',
      operationId: 'listTokens',
      summary: "the factory's API tokens (never their secrets)",
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      query: noQuery,
      answers: { 200: { description: 'every API token of the factory (one page)', schema: pageSchema(tokenSchema, 'ApiTokenPage') } },
      async handle({ req, res, principal }) {
        res.json(await service.listTokens(principal, factoryParam(req)));
      },
    }),
    route({
      method: 'post',
      path: '/factories/:factory/tokens',
      operationId: 'createToken',
      summary: 'create an API token with scopes the caller holds; its secret is in this answer only',
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      body: createTokenBody,
      answers: { 201: { description: 'the token and its secret', schema: createdTokenSchema } },
      async handle({ req, res, principal, body }) {
        res.status(201).json(await service.createToken(principal, factoryParam(req), body));
      },
    }),
    route({
      method: 'delete',
      path: '/factories/:factory/tokens/:id',
      operationId: 'revokeToken',
      summary: 'revoke an API token',
      tag: 'tokens',
      auth: 'required',
      scopes: ['tokens:write'],
      answers: { 204: { description: 'revoked' } },
      async handle({ req, res, principal }) {
        await service.revokeToken(principal, factoryParam(req), req.params.id);
        res.status(204).end();
      },
    }),

    // ---- audit ----
    route({
      method: 'get',
      path: '/factories/:factory/audit',
      operationId: 'listAudit',
      summary: "the factory's audit trail, filtered by target, actor, action, outcome and time",
      tag: 'audit',
      auth: 'required',
      scopes: READ,
      query: auditQuery,
      answers: { 200: { description: 'a page of audit records', schema: pageSchema(auditSchema, 'AuditPage') } },
      async handle({ req, res, principal, query }) {
        res.json(await service.audit(principal, factoryParam(req), query));
      },
    }),
    route({
      method: 'get',
      path: '/factories/:factory/audit/export',
      operationId: 'exportAudit',
      summary: 'every record the filters select (up to 100,000), as NDJSON or CSV, for a download',
      tag: 'audit',
      auth: 'required',
      scopes: READ,
      query: auditExportQuery,
      answers: {
        200: {
          description: 'one record per line',
          content: { 'application/x-ndjson': z.string(), 'text/csv': z.string() },
        },
      },
      async handle({ req, res, principal, query }) {
        const { format, ...filters } = query;
        const records = service.auditExport(principal, factoryParam(req), filters);
        // The first record (or the refusal) is awaited before any header is sent.
        const first = await records.next();
        async function* all(): AsyncGenerator<AuditJson> {
          if (!first.done) yield first.value;
          yield* records;
        }
        await sendExport(res, all(), format ?? 'ndjson', String(factoryParam(req)));
      },
    }),
    // ---- the operator's own commands (the operator: an operator token, the local CLI or its console session) ----
    route({
      method: 'post',
      path: '/factories',
      operationId: 'createFactory',
      summary: 'create a factory (operator only)',
      tag: 'operator',
      auth: 'required',
      body: createFactoryBody,
      answers: { 201: { description: 'the factory', schema: factorySchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.createFactory(principal, body.name));
      },
    }),
    route({
      method: 'get',
      path: '/keys',
      operationId: 'listSigningKeys',
      summary: 'the token-signing keys (operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'every signing key', schema: z.array(signingKeySchema) } },
      async handle({ res, principal }) {
        res.json(await service.listSigningKeys(principal));
      },
    }),
    route({
      method: 'post',
      path: '/keys',
      operationId: 'addSigningKey',
      summary: 'generate a token-signing key (operator only)',
      tag: 'operator',
      auth: 'required',
      body: addKeyBody,
      answers: { 201: { description: 'the new key', schema: signingKeySchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.addSigningKey(principal, body));
      },
    }),
    ...(['activate', 'retire'] as const).map((verb) =>
      route({
        method: 'post',
        path: `/keys/:kid/${verb}`,
        operationId: `${verb}SigningKey`,
        summary: verb === 'activate' ? 'sign new tokens with this key; the previous one stays trusted (operator only)' : 'take a key out of the registry bundle (operator only)',
        tag: 'operator',
        auth: 'required',
        answers: { 200: { description: 'done', schema: z.record(z.string(), z.string()) } },
        async handle({ req, res, principal }) {
          res.json(verb === 'activate' ? await service.activateSigningKey(principal, req.params.kid) : await service.retireSigningKey(principal, req.params.kid));
        },
      }),
    ),
    route({
      method: 'get',
      path: '/audit',
      operationId: 'listAuditAll',
      summary: "every factory's audit trail and the accounts', with the factory audit's filters (operator only)",
      tag: 'operator',
      auth: 'required',
      query: auditQuery,
      answers: { 200: { description: 'a page of audit records', schema: pageSchema(auditAllSchema, 'AuditAllPage') } },
      async handle({ res, principal, query }) {
        res.json(await service.auditAll(principal, query));
      },
    }),
    route({
      method: 'get',
      path: '/registry',
      operationId: 'registrySettings',
      summary: 'what registries and doctor compare against (operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'the published settings', schema: registrySettingsSchema } },
      async handle({ res, principal }) {
        res.json(await service.registrySettings(principal));
      },
    }),
    route({
      method: 'get',
      path: '/operator-tokens',
      operationId: 'listOperatorTokens',
      summary: 'the operator tokens (never their secrets; operator only)',
      tag: 'operator',
      auth: 'required',
      query: noQuery,
      answers: { 200: { description: 'every operator token', schema: z.array(operatorTokenSchema) } },
      async handle({ res, principal }) {
        res.json(await service.listOperatorTokens(principal));
      },
    }),
    route({
      method: 'post',
      path: '/operator-tokens',
      operationId: 'createOperatorToken',
      summary: 'create an operator token (tgo_); its secret is in this answer only (operator only)',
      tag: 'operator',
      auth: 'required',
      body: operatorTokenBody,
      answers: { 201: { description: 'the token and its secret', schema: createdOperatorTokenSchema } },
      async handle({ res, principal, body }) {
        res.status(201).json(await service.createOperatorToken(principal, body));
      },
    }),
    route({
      method: 'delete',
      path: '/operator-tokens/:id',
      operationId: 'revokeOperatorToken',
      summary: 'revoke an operator token (operator only)',
      tag: 'operator',
      auth: 'required',
      answers: { 204: { description: 'revoked' } },
      async handle({ req, res, principal }) {
        await service.revokeOperatorToken(principal, req.params.id);
        res.status(204).end();
      },
    }),
  ];
}
