import {
  addExternalCa,
  createApiToken,
  createCaRegistrationCode,
  getFactorySettings,
  updateFactorySettings,
  type FactorySettingsPatch,
  createOnlineCa,
  deleteDevice,
  enrollFromCertificate,
  enrollFromCsr,
  requireCa,
  requireDevice,
  requireFactory,
  revokeApiToken,
  setCaState,
  setDeviceState,
  type Actor,
  type AuthorityDeps,
} from '../shared/authority/index.js';
import { forbidden, invalidInput, unauthenticated } from '../shared/errors.js';
import { hashSecret, secretKind } from '../shared/secrets.js';
import type { ApiToken, CaState, DeviceState, Factory } from '../shared/store/types.js';
import { presentAudit, presentCa, presentDevice, presentFactory, presentToken } from './present.js';

/**
 * Who is calling the admin service: the operator (local CLI with access to the store and keys:
 * every factory, every scope) or an API token (one factory, its scopes).
 */
export type Principal = { kind: 'operator'; source?: string | null } | { kind: 'token'; token: ApiToken; source: string | null };

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
  constructor(private readonly deps: AuthorityDeps) {}

  /** Resolves an admin API bearer secret to a principal, or throws 401. */
  async authenticate(secret: string | undefined, source: string | null): Promise<Principal> {
    if (!secret) throw unauthenticated('token_required', 'an admin API token is required (Authorization: Bearer tga_...)');
    if (secretKind(secret) !== 'api') throw unauthenticated('token_invalid', 'the admin API token is invalid');
    const token = await this.deps.store.findTokenBySecretHash(hashSecret(secret));
    const now = this.deps.now();
    if (!token || token.kind !== 'api') throw unauthenticated('token_invalid', 'the admin API token is invalid');
    if (token.revokedAt !== null) throw unauthenticated('token_revoked', 'the admin API token is revoked');
    if (token.expiresAt !== null && token.expiresAt <= now) throw unauthenticated('token_expired', 'the admin API token has expired');
    return { kind: 'token', token, source };
  }

  private actor(p: Principal): Actor {
    return p.kind === 'operator' ? { actor: 'operator', source: p.source ?? null } : { actor: `token:${p.token.id}`, source: p.source };
  }

  /**
   * The factory named, if the principal may act on it with one of `scopes`. A token naming another
   * factory gets 403 whether or not that factory exists, so names cannot be probed.
   */
  private async factory(p: Principal, name: unknown, scopes: readonly string[]): Promise<Factory> {
    if (p.kind === 'token') {
      const factory = await this.deps.store.getFactory(p.token.factoryId);
      if (!factory || typeof name !== 'string' || factory.name !== name) {
        throw forbidden('factory_forbidden', 'this token is not allowed to act on that factory');
      }
      if (!scopes.some((s) => p.token.scopes.includes(s))) {
        throw forbidden('scope_missing', `this token lacks the scope ${scopes.join(' or ')}`);
      }
      return factory;
    }
    return requireFactory(this.deps, name);
  }

  async whoami(p: Principal) {
    if (p.kind === 'operator') return { kind: 'operator' as const };
    const factory = await this.deps.store.getFactory(p.token.factoryId);
    return { kind: 'token' as const, token: presentToken(p.token), factory: factory?.name ?? null };
  }

  async getFactory(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write', 'devices:test', 'containers:read', 'containers:write', 'tokens:write']);
    return presentFactory(f);
  }

  // ---- CAs -------------------------------------------------------------------------------

  async listCas(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    return (await this.deps.store.listDeviceCas({ factoryId: f.id })).map(presentCa);
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
    return presentCa(await requireCa(this.deps, f, caId));
  }

  // ---- devices ---------------------------------------------------------------------------

  async listDevices(p: Principal, factoryName: unknown, query: { state?: unknown; limit?: unknown; after?: unknown }) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const states: DeviceState[] = ['active', 'pending', 'disabled', 'revoked'];
    if (query.state !== undefined && !states.includes(query.state as DeviceState)) {
      throw invalidInput('state_invalid', `state must be one of ${states.join(', ')}`);
    }
    let limit: number | undefined;
    if (query.limit !== undefined) {
      limit = typeof query.limit === 'string' ? Number(query.limit) : (query.limit as number);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit_invalid', 'limit must be a whole number between 1 and 1000');
    }
    if (query.after !== undefined && (typeof query.after !== 'string' || query.after.length > 64)) {
      throw invalidInput('after_invalid', 'after must be a device UUID from a previous page');
    }
    const devices = await this.deps.store.listDevices(f.id, {
      ...(query.state !== undefined ? { state: query.state as DeviceState } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(query.after !== undefined ? { after: query.after as string } : {}),
    });
    return devices.map((d) => presentDevice(d, f.name));
  }

  async getDevice(p: Principal, factoryName: unknown, uuid: unknown) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const device = await requireDevice(this.deps, f, uuid);
    const audit = await this.deps.store.listAudit({ factoryId: f.id, target: device.uuid, limit: 100 });
    return { ...presentDevice(device, f.name), history: audit.map(presentAudit) };
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

  async setDeviceState(p: Principal, factoryName: unknown, uuid: unknown, state: DeviceState, reason: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    return presentDevice(await setDeviceState(this.deps, this.actor(p), f, uuid, state, reason), f.name);
  }

  async deleteDevice(p: Principal, factoryName: unknown, uuid: unknown) {
    const f = await this.factory(p, factoryName, ['devices:write']);
    await deleteDevice(this.deps, this.actor(p), f, uuid);
  }

  // ---- tokens and audit ------------------------------------------------------------------

  async listTokens(p: Principal, factoryName: unknown) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    return (await this.deps.store.listTokens(f.id, { kind: 'api' })).map(presentToken);
  }

  async createToken(p: Principal, factoryName: unknown, body: { scopes?: unknown; description?: unknown; days?: unknown }) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    const created = await createApiToken(this.deps, this.actor(p), f, body, p.kind === 'operator' ? 'operator' : p.token.scopes);
    return { ...presentToken(created.token), secret: created.secret };
  }

  async revokeToken(p: Principal, factoryName: unknown, id: unknown) {
    const f = await this.factory(p, factoryName, ['tokens:write']);
    await revokeApiToken(this.deps, this.actor(p), f, id);
  }

  async audit(p: Principal, factoryName: unknown, query: { after?: unknown; limit?: unknown; target?: unknown }) {
    const f = await this.factory(p, factoryName, ['devices:read', 'devices:write']);
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit_invalid', 'limit must be a whole number between 1 and 1000');
    if (query.after !== undefined && (typeof query.after !== 'string' || !/^\d{1,15}$/.test(query.after))) {
      throw invalidInput('after_invalid', 'after must be an audit record id');
    }
    if (query.target !== undefined && (typeof query.target !== 'string' || query.target.length > 128)) {
      throw invalidInput('target_invalid', 'target must be a device UUID, token id or CA id');
    }
    const records = await this.deps.store.listAudit({
      factoryId: f.id,
      limit,
      ...(query.after !== undefined ? { after: query.after as string } : {}),
      ...(query.target !== undefined ? { target: query.target as string } : {}),
    });
    return records.map(presentAudit);
  }
}
