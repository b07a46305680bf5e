import { TollgateError, invalidInput } from '../shared/errors.js';
import { kindOfStatus } from '../shared/http/status.js';
import type { CaState, DeviceState } from '../shared/store/types.js';
import type { AdminService, EnrollmentResult, Principal } from './service.js';

/**
 * One interface for every factory-admin operation, with two implementations: local (AdminService
 * as the operator, on the store and key files) and remote (the admin HTTP API with a token). The
 * CLI's commands are written once against it. Method names are AdminService's, minus the principal.
 */

type Operation =
  | 'whoami'
  | 'listFactories'
  | 'getFactory'
  | 'listCas'
  | 'createOnlineCa'
  | 'addExternalCa'
  | 'createCaRegistrationCode'
  | 'getFactorySettings'
  | 'updateFactorySettings'
  | 'setCaState'
  | 'getCa'
  | 'listDevices'
  | 'getDevice'
  | 'enrollBulk'
  | 'setDeviceState'
  | 'deleteDevice'
  | 'listTokens'
  | 'createToken'
  | 'revokeToken'
  | 'audit'
  | 'createFactory'
  | 'listSigningKeys'
  | 'addSigningKey'
  | 'activateSigningKey'
  | 'retireSigningKey'
  | 'auditAll'
  | 'registrySettings'
  | 'listOperatorTokens'
  | 'createOperatorToken'
  | 'revokeOperatorToken';

type WithoutPrincipal<F> = F extends (p: Principal, ...args: infer A) => infer R ? (...args: A) => R : never;
type Result<K extends Operation | 'enroll'> = Awaited<ReturnType<AdminService[K]>>;

export type EnrollBody = Parameters<AdminService['enroll']>[2];

/** An enrollment as the device needs it: its certificate, its CA, and how to reach the gateway. */
export interface EnrollmentAnswer extends EnrollmentResult {
  /** PEM bundle the device verifies the gateway with. */
  gatewayCa: string;
  /** The gateway URL. */
  gateway: string;
}

export type AdminClient = { [K in Operation]: WithoutPrincipal<AdminService[K]> } & {
  enroll(factory: unknown, body: EnrollBody): Promise<EnrollmentAnswer>;
  /** Releases what the client holds (the store, locally). */
  close(): void;
};

// ---- local ----------------------------------------------------------------------------------

export interface LocalClientOptions {
  service: AdminService;
  principal: Principal;
  /** Resolved on the first enrollment only: it reads the gateway CA devices trust. */
  enrollment: () => Promise<{ gatewayCa: string; gateway: string }>;
  close?: () => void;
}

export function localAdminClient({ service, principal: p, enrollment, close }: LocalClientOptions): AdminClient {
  return {
    whoami: () => service.whoami(p),
    listFactories: () => service.listFactories(p),
    getFactory: (f) => service.getFactory(p, f),
    listCas: (f) => service.listCas(p, f),
    createOnlineCa: (f, body) => service.createOnlineCa(p, f, body),
    addExternalCa: (f, pem, verification) => service.addExternalCa(p, f, pem, verification),
    createCaRegistrationCode: (f) => service.createCaRegistrationCode(p, f),
    getFactorySettings: (f) => service.getFactorySettings(p, f),
    updateFactorySettings: (f, patch) => service.updateFactorySettings(p, f, patch),
    setCaState: (f, id, state, reason) => service.setCaState(p, f, id, state, reason),
    getCa: (f, id) => service.getCa(p, f, id),
    listDevices: (f, query) => service.listDevices(p, f, query),
    getDevice: (f, uuid) => service.getDevice(p, f, uuid),
    async enroll(f, body) {
      const result = await service.enroll(p, f, body);
      return { ...result, ...(await enrollment()) };
    },
    enrollBulk: (f, rows) => service.enrollBulk(p, f, rows),
    setDeviceState: (f, uuid, state, reason) => service.setDeviceState(p, f, uuid, state, reason),
    deleteDevice: (f, uuid) => service.deleteDevice(p, f, uuid),
    listTokens: (f) => service.listTokens(p, f),
    createToken: (f, body) => service.createToken(p, f, body),
    revokeToken: (f, id) => service.revokeToken(p, f, id),
    audit: (f, query) => service.audit(p, f, query),
    createFactory: (name) => service.createFactory(p, name),
    listSigningKeys: () => service.listSigningKeys(p),
    addSigningKey: (body) => service.addSigningKey(p, body),
    activateSigningKey: (kid) => service.activateSigningKey(p, kid),
    retireSigningKey: (kid) => service.retireSigningKey(p, kid),
    auditAll: (query) => service.auditAll(p, query),
    registrySettings: () => service.registrySettings(p),
    listOperatorTokens: () => service.listOperatorTokens(p),
    createOperatorToken: (body) => service.createOperatorToken(p, body),
    revokeOperatorToken: (id) => service.revokeOperatorToken(p, id),
    close: () => close?.(),
  };
}

// ---- remote ---------------------------------------------------------------------------------

export interface RemoteClientOptions {
  /** Base URL of the admin API, e.g. http://127.0.0.1:8442. */
  url: string;
  /** The API token secret (tga_...). */
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const ACTION_OF_STATE: Record<DeviceState | CaState, string | undefined> = {
  disabled: 'disable',
  active: 'enable',
  revoked: 'revoke',
  pending: undefined,
};

function action(state: DeviceState | CaState): string {
  const a = ACTION_OF_STATE[state];
  if (!a) throw invalidInput('state_invalid', `state ${String(state)} cannot be set through the admin API`);
  return a;
}

/**
 * One path segment. Dot segments are refused here: URL normalisation would resolve them before
 * the request leaves, and `devices/..` would silently become another route.
 */
function seg(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value === '.' || value === '..' || /^(%2e|\.){1,2}$/i.test(value)) {
    throw invalidInput(`${what}_invalid`, `${what.replaceAll('_', ' ')} must be a non-empty name`);
  }
  return encodeURIComponent(value);
}

function query(values: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

export function remoteAdminClient({ url, token, timeoutMs = 30_000, fetch: doFetch = fetch }: RemoteClientOptions): AdminClient {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw invalidInput('url_invalid', `admin URL "${url}" is not a URL; expected e.g. http://127.0.0.1:8442`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw invalidInput('url_invalid', `admin URL must be http:// or https://, not ${base.protocol}`);
  if (base.username || base.password) throw invalidInput('url_invalid', 'the admin URL must not carry credentials; the token comes from TOLLGATE_TOKEN');
  const root = base.href.replace(/\/+$/, '');

  async function call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await doFetch(`${root}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        // A redirect would carry the bearer token to wherever it points.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      throw new TollgateError('unavailable', 'admin_unreachable', `cannot reach the admin API at ${root}: ${why}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok && json !== undefined) return json as T;
    const error = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    if (error && typeof error.code === 'string') {
      const details = typeof error.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : undefined;
      throw new TollgateError(kindOfStatus(res.status), error.code, typeof error.message === 'string' ? error.message : error.code, details);
    }
    throw new TollgateError('unavailable', 'admin_response_invalid', `the admin API at ${root} answered ${res.status} without a Tollgate JSON body; is the URL right?`);
  }

  const f = (factory: unknown) => `/v1/factories/${seg(factory, 'factory_name')}`;

  return {
    whoami: () => call<Result<'whoami'>>('GET', '/v1/whoami'),
    listFactories: () => call<Result<'listFactories'>>('GET', '/v1/factories'),
    getFactory: (factory) => call<Result<'getFactory'>>('GET', f(factory)),
    listCas: (factory) => call<Result<'listCas'>>('GET', `${f(factory)}/cas`),
    createOnlineCa: (factory, body) => call<Result<'createOnlineCa'>>('POST', `${f(factory)}/cas`, { kind: 'online', ...body }),
    addExternalCa: (factory, pem, verification) =>
      call<Result<'addExternalCa'>>('POST', `${f(factory)}/cas`, {
        kind: 'external',
        certificate: pem,
        ...(verification !== undefined ? { verificationCertificate: verification } : {}),
      }),
    createCaRegistrationCode: (factory) => call<Result<'createCaRegistrationCode'>>('POST', `${f(factory)}/cas/registration-code`),
    getFactorySettings: (factory) => call<Result<'getFactorySettings'>>('GET', `${f(factory)}/settings`),
    updateFactorySettings: (factory, patch) => call<Result<'updateFactorySettings'>>('PATCH', `${f(factory)}/settings`, patch),
    setCaState: (factory, id, state, reason) =>
      call<Result<'setCaState'>>('POST', `${f(factory)}/cas/${seg(id, 'ca_id')}/${action(state)}`, { reason }),
    getCa: (factory, id) => call<Result<'getCa'>>('GET', `${f(factory)}/cas/${seg(id, 'ca_id')}`),
    listDevices: (factory, q) => call<Result<'listDevices'>>('GET', `${f(factory)}/devices${query(q)}`),
    getDevice: (factory, uuid) => call<Result<'getDevice'>>('GET', `${f(factory)}/devices/${seg(uuid, 'device_uuid')}`),
    enroll: (factory, body) => call<EnrollmentAnswer>('POST', `${f(factory)}/devices`, body),
    enrollBulk: (factory, rows) => call<Result<'enrollBulk'>>('POST', `${f(factory)}/devices/bulk`, { rows }),
    setDeviceState: (factory, uuid, state, reason) =>
      call<Result<'setDeviceState'>>('POST', `${f(factory)}/devices/${seg(uuid, 'device_uuid')}/${action(state)}`, { reason }),
    deleteDevice: (factory, uuid) => call<void>('DELETE', `${f(factory)}/devices/${seg(uuid, 'device_uuid')}`),
    listTokens: (factory) => call<Result<'listTokens'>>('GET', `${f(factory)}/tokens`),
    createToken: (factory, body) => call<Result<'createToken'>>('POST', `${f(factory)}/tokens`, body),
    revokeToken: (factory, id) => call<void>('DELETE', `${f(factory)}/tokens/${seg(id, 'token_id')}`),
    audit: (factory, q) => call<Result<'audit'>>('GET', `${f(factory)}/audit${query(q)}`),
    createFactory: (name) => call<Result<'createFactory'>>('POST', '/v1/factories', { name }),
    listSigningKeys: () => call<Result<'listSigningKeys'>>('GET', '/v1/keys'),
    addSigningKey: (body) => call<Result<'addSigningKey'>>('POST', '/v1/keys', body),
    activateSigningKey: (kid) => call<Result<'activateSigningKey'>>('POST', `/v1/keys/${seg(kid, 'kid')}/activate`),
    retireSigningKey: (kid) => call<Result<'retireSigningKey'>>('POST', `/v1/keys/${seg(kid, 'kid')}/retire`),
    auditAll: (q) => call<Result<'auditAll'>>('GET', `/v1/audit${query(q)}`),
    registrySettings: () => call<Result<'registrySettings'>>('GET', '/v1/registry'),
    listOperatorTokens: () => call<Result<'listOperatorTokens'>>('GET', '/v1/operator-tokens'),
    createOperatorToken: (body) => call<Result<'createOperatorToken'>>('POST', '/v1/operator-tokens', body),
    revokeOperatorToken: (id) => call<void>('DELETE', `/v1/operator-tokens/${seg(id, 'token_id')}`),
    close: () => undefined,
  };
}
