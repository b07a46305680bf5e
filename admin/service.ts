import {
  activateSigningKey,
  addExternalCa,
  createApiToken,
  createFactory,
  createOperatorToken,
  createSigningKey,
  retireSigningKey,
  revokeOperatorToken,
  createCaRegistrationCode,
  getFactorySettings,
  updateFactorySettings,
  type FactorySettingsPatch,
  createOnlineCa,
  deleteDevice,
  enrollBatch,
  enrollFromCertificate,
  enrollFromCsr,
  requireCa,
  requireDevice,
  requireFactory,
  revokeApiToken,
  setCaState,
  setDeviceState,
  authenticateSecret,
  authenticateTokenHash,
  record,
  operatorTokenStanding,
  refusalError,
  type Actor,
  type AuthorityDeps,
  type SecretStanding,
} from '../shared/authority/index.js';
import { auditRecordJson } from '../shared/ops/audit-archive.js';
import { TollgateError, forbidden, invalidInput } from '../shared/errors.js';
import { secretKind } from '../shared/secrets.js';
import { registryTokenSettings, type RegistryTokenSettings } from '../authsvc/registry-config.js';
import { gatewayUrl, type Config } from '../shared/config.js';
import type { TokenRecord, AuditFilter, AuditOutcome, CaState, DeviceState, Factory } from '../shared/store/types.js';
import { decodeCursor, pageOf } from './cursor.js';
import {
  presentAudit,
  presentCa,
  presentDevice,
  presentDeviceDetail,
  presentFactory,
  presentOperatorToken,
  presentSigningKey,
  presentToken,
  type AuditJson,
  type Page,
} from './present.js';

/**
 * Who is calling the admin service:
 * - the operator (the local CLI, a remote caller with an operator token `tgo_`, or a console
 *   session opened with `tollgate console`'s one-time link): every factory, every scope, and the
 *   operator's own commands; `operatorTokenId` names the operator token when one was used;
 * - an API token: one factory, its scopes;
 * - a person signed in to the console through the OpenID Connect provider: one factory and the
 *   scopes the configuration maps their claims to. `identity` names them in the audit trail.
 */
export type Principal =
  | { kind: 'operator'; source?: string | null; operatorTokenId?: string }
  | { kind: 'token'; token: TokenRecord; source: string | null }
  | { kind: 'person'; identity: string; factoryId: string; scopes: readonly string[]; source: string | null };

const DEVICE_STATES: readonly DeviceState[] = ['active', 'pending', 'disabled', 'revoked'];
const OUTCOMES: readonly AuditOutcome[] = ['success', 'denied'];
/** The most records one audit export holds; a narrower time range gets the rest. */
export const AUDIT_EXPORT_MAX = 100_000;

export interface DeviceListQuery {
  state?: unknown;
  test?: unknown;
  search?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

export interface AuditQuery {
  target?: unknown;
  actor?: unknown;
  action?: unknown;
  outcome?: unknown;
  from?: unknown;
  to?: unknown;
  order?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

/** What the operator's registry and doctor commands need to know of the running configuration. */
export interface PublishedSettings extends RegistryTokenSettings {
  /** The gateway URL devices use. */
  gateway: string;
  /** How the realm's tokens name their key (authsvc.tokenKeyHint). */
  tokenKeyHint: Config['authsvc']['tokenKeyHint'];
}

export function publishedSettings(config: Config): PublishedSettings {
  return { ...registryTokenSettings(config), gateway: gatewayUrl(config), tokenKeyHint: config.authsvc.tokenKeyHint };
}

/** A page size from a query: a whole number from 1 to 1000 (strings as they come from a URL). */
function pageLimit(value: unknown, fallback = 100): number {
  if (value === undefined) return fallback;
  const limit = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit_invalid', 'limit must be a whole number between 1 and 1000');
  return limit;
}

function optionalText(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max) throw invalidInput(`${field}_invalid`, `${field} must be a string of at most ${max} characters`);
  return value;
}

function optionalTime(value: unknown, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = typeof value === 'string' && value.length <= 40 ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw invalidInput(`${field}_invalid`, `${field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z`);
  return ms;
}

export interface EnrollmentResult {
  device: ReturnType<typeof presentDevice>;
  certificate: string;
  caCertificate: string;
}

/**
 * The factory-admin operations, with their authorization: which principal may do what to which
 * factory. The HTTP API and the CLI's local mode both call this, so the rules live in one place.
 */
export class AdminService {
  constructor(
    readonly deps: AuthorityDeps,
    /** The configuration's published settings (realm, service, issuer, gateway URL), for registrySettings. */
    private readonly settings?: PublishedSettings,
  ) {}

  /**
   * Resolves an admin API bearer secret to a principal, or throws 401. The authority judges the
   * token; a malformed or unknown one is `token_invalid` here, without saying which.
   */
  async authenticate(secret: string | undefined, source: string | null, options: { recordRefusal?: boolean } = {}): Promise<Principal> {
    if (secret !== undefined && secretKind(secret) === 'operator') {
      const standing = await operatorTokenStanding(this.deps, secret);
      if (!standing.ok) {
        if (options.recordRefusal === true) await record(this.deps, { type: 'admin.refused', actor: 'anonymous', source, factoryId: null, target: null, reason: standing.reason });
        throw refusalError(standing.reason);
      }
      return { kind: 'operator', source, operatorTokenId: standing.token.id };
    }
    const standing: SecretStanding = secret
      ? await authenticateSecret(this.deps, secret, { kinds: ['api'], username: null })
      : { ok: false, reason: 'token_required', token: null };
    return this.principalOf(standing, source, options.recordRefusal === true);
  }

  /**
   * The same check by the secret's hash: a console session signed in with a token keeps only the
   * hash, and every request of the session is checked again, so revoking the token ends it. A
   * refusal is recorded as the admin API's.
   */
  async authenticateHash(secretHash: string, source: string | null): Promise<Principal> {
    return this.principalOf(await authenticateTokenHash(this.deps, secretHash, { kinds: ['api'], username: null }), source, true);
  }

  /**
   * The principal, or the refusal thrown, and with `recordRefusal` recorded (`admin.refused`) under
   * the token and its factory when the token is known (a console sign-in records its own).
   */
  private async principalOf(standing: SecretStanding, source: string | null, recordRefusal: boolean): Promise<Principal> {
    if (standing.ok) return { kind: 'token', token: standing.token, source };
    const reason = standing.reason === 'token_unknown' ? 'token_invalid' : standing.reason;
    if (recordRefusal) {
      const token = standing.token;
      await record(this.deps, { type: 'admin.refused', actor: token ? `token:${token.id}` : 'anonymous', source, factoryId: token?.factoryId ?? null, target: token?.id ?? null, reason });
    }
    throw refusalError(reason);
  }

  private actor(p: Principal): Actor {
    if (p.kind === 'operator') return { actor: p.operatorTokenId ? `operator:${p.operatorTokenId}` : 'operator', source: p.source ?? null };
    if (p.kind === 'person') return { actor: p.identity, source: p.source };
    return { actor: `token:${p.token.id}`, source: p.source };
  }

  /** The operator's own commands: the local CLI, an operator token or the operator's console session; a factory's token never. */
  private operator(p: Principal): Actor {
    if (p.kind !== 'operator') throw forbidden('operator_only', 'this is an operator command: use an operator token (tgo_...) or the CLI on the Tollgate host');
    return this.actor(p);
  }

  /** The one factory and the scopes a token or a person holds; the operator holds everything. */
  private static grant(p: Principal): { factoryId: string; scopes: readonly string[]; who: string } | null {
    if (p.kind === 'token') return { factoryId: p.token.factoryId, scopes: p.token.scopes, who: 'this token' };
    if (p.kind === 'person') return { factoryId: p.factoryId, scopes: p.scopes, who: 'this account' };
    return null;
  }

  /**
   * The factory named, if the principal may act on it with one of `scopes`: the one home of the
   * admin API's authorization, for bearer tokens and console sessions alike. A principal naming
   * another factory gets 403 whether or not that factory exists, so names cannot be probed.
   */
  private async factory(p: Principal, name: unknown, scopes: readonly string[]): Promise<Factory> {
    const grant = AdminService.grant(p);
    if (grant === null) return requireFactory(this.deps, name);
    const factory = await this.deps.store.getFactory(grant.factoryId);
    // Refusals are recorded under the principal's own factory: whose credential tried what.
    const refuse = async (reason: string, message: string) => {
      const target = typeof name === 'string' ? name.slice(0, 64) : null;
      await record(this.deps, { type: 'admin.refused', ...this.actor(p), factoryId: grant.factoryId, target, reason, details: { scopes: [...scopes] } });
      return forbidden(reason, message);
    };
    if (!factory || typeof name !== 'string' || factory.name !== name) throw await refuse('factory_forbidden', `${grant.who} is not allowed to act on that factory`);
    if (!scopes.some((s) => grant.scopes.includes(s))) throw await refuse('scope_missing', `${grant.who} lacks the scope ${scopes.join(' or ')}`);
    return factory;
  }

  async whoami(p: Principal) {
    if (p.kind === 'operator') return { kind: 'operator' as const, ...(p.operatorTokenId ? { tokenId: p.operatorTokenId } : {}) };
    if (p.kind === 'person') {
      const factory = await this.deps.store.getFactory(p.factoryId);
      return { kind: 'person' as const, identity: p.identity, factory: factory?.name ?? null, scopes: [...p.scopes] };
    }
    const factory = await this.deps.store.getFactory(p.token.factoryId);
    return { kind: 'token' as const, token: presentToken(p.token), factory: factory?.name ?? null };
  }

  /** The factories the principal may see: all of them for the operator, else its own. */
  async listFactories(p: Principal): Promise<Page<ReturnType<typeof presentFactory>>> {
    const grant = AdminService.grant(p);
    if (grant === null) return { items: (await this.deps.store.listFactories()).map(presentFactory), next: null };
    const factory = await this.deps.store.getFactory(grant.factoryId);
    return { items: factory ? [presentFactory(factory)] : [], next: null };
  }

  async getFactory(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write', 'devices:test', 'containers:read', 'containers:write', 'tokens:write']);
    return presentFactory(f);
  }

  // ---- CAs -------------------------------------------------------------------------------

  /** Every CA of the factory (a handful), each with how many devices it issued by state. */
  async listCas(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const counts = await this.deps.store.countDevicesByCa(f.id);
    const cas = await this.deps.store.listDeviceCas({ factoryId: f.id });
    return { items: cas.map((ca) => presentCa(ca, counts.get(ca.id) ?? noDevices())), next: null };
  }

  async createOnlineCa(p: Principal, factoryName: unknown, body: { commonName?: unknown; days?: unknown }) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return presentCa(await createOnlineCa(this.deps, this.actor(p), f, { commonName: body.commonName, days: body.days }));
  }

  /** The external CA's key must sign a verification certificate naming a registration code. */
  async addExternalCa(p: Principal, factoryName: unknown, certificatePem: unknown, verificationCertificatePem?: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return presentCa(await addExternalCa(this.deps, this.actor(p), f, certificatePem, verificationCertificatePem));
  }

  async createCaRegistrationCode(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return createCaRegistrationCode(this.deps, this.actor(p), f);
  }

  // ---- factory settings ------------------------------------------------------------------

  async getFactorySettings(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    return getFactorySettings(this.deps, f);
  }

  async updateFactorySettings(p: Principal, factoryName: unknown, patch: FactorySettingsPatch) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return updateFactorySettings(this.deps, this.actor(p), f, patch);
  }

  async setCaState(p: Principal, factoryName: unknown, caId: unknown, state: CaState, reason: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return presentCa(await setCaState(this.deps, this.actor(p), f, caId, state, reason));
  }

  async getCa(p: Principal, factoryName: unknown, caId: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const ca = await requireCa(this.deps, f, caId);
    return presentCa(ca, (await this.deps.store.countDevicesByCa(f.id)).get(ca.id) ?? noDevices());
  }

  // ---- devices ---------------------------------------------------------------------------

  async listDevices(p: Principal, factoryName: unknown, query: DeviceListQuery) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    if (query.state !== undefined && !DEVICE_STATES.includes(query.state as DeviceState)) {
      throw invalidInput('state_invalid', `state must be one of ${DEVICE_STATES.join(', ')}`);
    }
    if (query.test !== undefined && !['true', 'false', true, false].includes(query.test as string | boolean)) {
      throw invalidInput('test_invalid', 'test must be true (test devices only) or false (enrolled devices only)');
    }
    const limit = pageLimit(query.limit);
    const search = optionalText(query.search, 'search', 128);
    const after = query.cursor === undefined ? undefined : decodeCursor('devices', String(query.cursor));
    const devices = await this.deps.store.listDevices(f.id, {
      ...(query.state !== undefined ? { state: query.state as DeviceState } : {}),
      ...(query.test !== undefined ? { test: query.test === true || query.test === 'true' } : {}),
      ...(search !== undefined ? { search } : {}),
      ...(after !== undefined ? { after } : {}),
      limit: limit + 1,
    });
    return pageOf(devices, limit, 'devices', (d) => d.uuid, (d) => presentDevice(d, f.name));
  }

  /** A device with its certificate read out and its history, the newest 100 records oldest first. */
  async getDevice(p: Principal, factoryName: unknown, uuid: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const device = await requireDevice(this.deps, f, uuid);
    const audit = await this.deps.store.listAudit({ factoryId: f.id, target: device.uuid, limit: 100, order: 'desc' });
    return presentDeviceDetail(device, f.name, audit.reverse());
  }

  /**
   * Enrolls from a CSR (the online CA signs it) or from a certificate a factory CA issued. A test
   * device (`test: true`, lifetime in hours) needs only `devices:test`.
   */
  async enroll(
    p: Principal,
    factoryName: unknown,
    body: { csr?: unknown; certificate?: unknown; name?: unknown; caId?: unknown; days?: unknown; hours?: unknown; minutes?: unknown; test?: unknown },
  ): Promise<EnrollmentResult> {
    if (body.test !== undefined && typeof body.test !== 'boolean') throw invalidInput('test_invalid', 'test must be true or false');
    const test = body.test === true;
    const f = await this.factory(p, factoryName, test ? ['devices:write', 'devices:test'] : ['devices:write']);
    if ((body.csr === undefined) === (body.certificate === undefined)) {
      throw invalidInput('enrollment_source', 'give exactly one of csr (a PKCS#10 request to sign) or certificate (issued by a factory CA)');
    }
    let result;
    if (body.csr !== undefined) {
      if (!test && (body.hours !== undefined || body.minutes !== undefined)) {
        throw invalidInput('lifetime_invalid', 'hours and minutes apply to test devices; enrolled devices take days');
      }
      if (test && body.days !== undefined) throw invalidInput('days_invalid', 'days applies to enrolled devices; test devices take hours');
      result = await enrollFromCsr(this.deps, this.actor(p), f, {
        csrPem: body.csr,
        name: body.name,
        caId: body.caId,
        days: body.days,
        hours: body.hours,
        minutes: body.minutes,
        test,
      });
    } else {
      if (test) throw invalidInput('test_invalid', 'test devices are issued from a CSR');
      result = await enrollFromCertificate(this.deps, this.actor(p), f, { certificatePem: body.certificate, name: body.name });
    }
    return { device: presentDevice(result.device, f.name), certificate: result.certificatePem, caCertificate: result.caCertificatePem };
  }

  /** Enrolls many devices from CSRs or certificates, all or nothing (see enrollBatch). */
  async enrollBulk(p: Principal, factoryName: unknown, rows: readonly { csr?: unknown; certificate?: unknown; name?: unknown; days?: unknown }[]) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    const batch = rows.map((row, i) => {
      if ((row.csr === undefined) === (row.certificate === undefined)) {
        throw invalidInput('enrollment_source', `row ${i + 1}: give exactly one of csr or certificate`);
      }
      return row.csr !== undefined ? { csrPem: row.csr, name: row.name, days: row.days } : { certificatePem: row.certificate, name: row.name };
    });
    const outcome = await enrollBatch(this.deps, this.actor(p), f, batch);
    if (!outcome.ok) {
      const bad = outcome.results.filter((r) => !r.ok).length;
      throw invalidInput('bulk_rows_refused', `${bad} of ${rows.length} rows were refused; nothing was enrolled`, { rows: outcome.results });
    }
    return { enrolled: outcome.enrolled.length, results: outcome.results, devices: outcome.enrolled.map((e) => presentDevice(e.device, f.name)) };
  }

  async setDeviceState(p: Principal, factoryName: unknown, uuid: unknown, state: DeviceState, reason: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return presentDevice(await setDeviceState(this.deps, this.actor(p), f, uuid, state, reason), f.name);
  }

  async deleteDevice(p: Principal, factoryName: unknown, uuid: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    await deleteDevice(this.deps, this.actor(p), f, uuid);
  }

  // ---- tokens and audit ------------------------------------------------------------------

  /** Every API token of the factory (never a secret). */
  async listTokens(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    return { items: (await this.deps.store.listTokens(f.id, { kind: 'api' })).map(presentToken), next: null };
  }

  async createToken(p: Principal, factoryName: unknown, body: { scopes?: unknown; description?: unknown; days?: unknown }) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    const grant = AdminService.grant(p);
    // A token creating a token becomes its parent; a console account's grant only bounds the scopes.
    const grantor = grant === null ? 'operator' : { scopes: grant.scopes, ...(p.kind === 'token' ? { token: p.token } : {}) };
    const created = await createApiToken(this.deps, this.actor(p), f, body, grantor);
    return { ...presentToken(created.token), secret: created.secret };
  }

  async revokeToken(p: Principal, factoryName: unknown, id: unknown) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    await revokeApiToken(this.deps, this.actor(p), f, id);
  }

  async audit(p: Principal, factoryName: unknown, query: AuditQuery): Promise<Page<AuditJson>> {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const limit = pageLimit(query.limit);
    const filter = this.auditFilter(f, query);
    const after = query.cursor === undefined ? undefined : decodeCursor(`audit-${filter.order}`, String(query.cursor));
    const records = await this.deps.store.listAudit({ ...filter, limit: limit + 1, ...(after !== undefined ? { after } : {}) });
    return pageOf(records, limit, `audit-${filter.order}`, (r) => r.id, presentAudit);
  }

  /** Every record the query selects (up to AUDIT_EXPORT_MAX), page by page, for a download. */
  async *auditExport(p: Principal, factoryName: unknown, query: AuditQuery): AsyncGenerator<AuditJson> {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const filter = this.auditFilter(f, query);
    let after: string | undefined;
    for (let sent = 0; sent < AUDIT_EXPORT_MAX; ) {
      const records = await this.deps.store.listAudit({ ...filter, limit: Math.min(1000, AUDIT_EXPORT_MAX - sent), ...(after !== undefined ? { after } : {}) });
      for (const r of records) yield presentAudit(r);
      sent += records.length;
      if (records.length < 1000) return;
      after = String(records[records.length - 1]!.id);
    }
  }

  /** The store's filter for an audit query: one factory's records, or (null) every record. */
  private auditFilter(f: Factory | null, query: AuditQuery): AuditFilter & { order: 'asc' | 'desc' } {
    if (query.outcome !== undefined && !OUTCOMES.includes(query.outcome as AuditOutcome)) throw invalidInput('outcome_invalid', 'outcome must be success or denied');
    if (query.order !== undefined && query.order !== 'asc' && query.order !== 'desc') throw invalidInput('order_invalid', 'order must be asc (oldest first) or desc');
    const target = optionalText(query.target, 'target', 128);
    const actor = optionalText(query.actor, 'actor', 300);
    const action = optionalText(query.action, 'action', 64);
    const since = optionalTime(query.from, 'from');
    const until = optionalTime(query.to, 'to');
    return {
      ...(f !== null ? { factoryId: f.id } : {}),
      order: query.order === 'desc' ? 'desc' : 'asc',
      ...(target !== undefined ? { target } : {}),
      ...(actor !== undefined ? { actor } : {}),
      ...(action !== undefined ? { action } : {}),
      ...(query.outcome !== undefined ? { outcome: query.outcome as AuditOutcome } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
    };
  }

  // ---- the operator's commands -----------------------------------------------------------

  async createFactory(p: Principal, name: unknown) {
    return presentFactory(await createFactory(this.deps, this.operator(p), name));
  }

  async listSigningKeys(p: Principal) {
    this.operator(p);
    return (await this.deps.store.listSigningKeys()).map(presentSigningKey);
  }

  async addSigningKey(p: Principal, body: { alg?: unknown; days?: unknown; activate?: unknown }) {
    if (body.activate !== undefined && typeof body.activate !== 'boolean') throw invalidInput('activate_invalid', 'activate must be true or false');
    return presentSigningKey(await createSigningKey(this.deps, this.operator(p), { algorithm: body.alg, days: body.days, activate: body.activate === true }));
  }

  async activateSigningKey(p: Principal, kid: unknown) {
    await activateSigningKey(this.deps, this.operator(p), kid);
    return { activated: kid as string };
  }

  async retireSigningKey(p: Principal, kid: unknown) {
    await retireSigningKey(this.deps, this.operator(p), kid);
    return { retired: kid as string };
  }

  /** Every factory's audit trail and the accounts', with the factory audit's filters and cursors. */
  async auditAll(p: Principal, query: AuditQuery) {
    this.operator(p);
    const limit = pageLimit(query.limit);
    const filter = this.auditFilter(null, query);
    const after = query.cursor === undefined ? undefined : decodeCursor(`audit-${filter.order}`, String(query.cursor));
    const records = await this.deps.store.listAudit({ ...filter, limit: limit + 1, ...(after !== undefined ? { after } : {}) });
    return pageOf(records, limit, `audit-${filter.order}`, (r) => r.id, auditRecordJson);
  }

  /** What registries and `tollgate doctor` compare against: the published settings and every signing key. */
  async registrySettings(p: Principal) {
    this.operator(p);
    if (!this.settings) throw new TollgateError('unavailable', 'settings_unavailable', 'this admin service was started without its configuration');
    return { ...this.settings, keys: (await this.deps.store.listSigningKeys()).map(presentSigningKey) };
  }

  async listOperatorTokens(p: Principal) {
    this.operator(p);
    return (await this.deps.store.listOperatorTokens()).map(presentOperatorToken);
  }

  async createOperatorToken(p: Principal, body: { description?: unknown; days?: unknown }) {
    const created = await createOperatorToken(this.deps, this.operator(p), body);
    return { ...presentOperatorToken(created.token), secret: created.secret };
  }

  async revokeOperatorToken(p: Principal, id: unknown) {
    await revokeOperatorToken(this.deps, this.operator(p), id);
  }
}

const noDevices = (): Record<DeviceState, number> => ({ active: 0, pending: 0, disabled: 0, revoked: 0 });
