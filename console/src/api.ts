/**
 * The console's only way to the server: same-origin JSON requests carrying the session cookie,
 * with the session's CSRF token on every state change. The shapes below are the admin API's
 * (its OpenAPI document at /v1/openapi.json describes them in full).
 */

export interface Session {
  kind: 'operator' | 'token' | 'person';
  identity: string;
  factory: string | null;
  scopes: string[];
  csrfToken: string;
  expiresAt: string;
  idleSeconds: number;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export type DeviceState = 'active' | 'pending' | 'disabled' | 'revoked';

export interface Device {
  uuid: string;
  factory: string;
  name: string | null;
  state: DeviceState;
  stateReason: string | null;
  test: boolean;
  caId: string;
  certificate: { fingerprint256: string; publicKeyFingerprint: string; notAfter: string };
  createdAt: string;
  updatedAt: string;
}

export interface AuditRecord {
  id: number;
  at: string;
  actor: string;
  action: string;
  outcome: 'success' | 'denied';
  target: string | null;
  reason: string | null;
  source: string | null;
  details: Record<string, unknown> | null;
}

export interface DeviceDetail extends Device {
  certificate: Device['certificate'] & { subject: string; issuer: string; serialNumber: string; keyType: string; notBefore: string; pem: string };
  history: AuditRecord[];
}

export interface DeviceCounts {
  active: number;
  pending: number;
  disabled: number;
  revoked: number;
}

export interface Ca {
  id: string;
  kind: 'online' | 'external';
  commonName: string;
  state: 'active' | 'disabled' | 'revoked';
  stateReason: string | null;
  fingerprint256: string;
  notAfter: string;
  createdAt: string;
  certificate: string;
  devices?: DeviceCounts;
}

export interface ApiToken {
  id: string;
  username: string;
  scopes: string[];
  description: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface Enrollment {
  device: Device;
  certificate: string;
  caCertificate: string;
  gatewayCa: string;
  gateway: string;
}

export interface BulkRow {
  row: number;
  uuid: string | null;
  ok: boolean;
  code?: string;
  message?: string;
}

export interface Settings {
  factory: string;
  jitMode: 'off' | 'pending' | 'active';
  certMaxDays: number;
  testCertMaxHours: number;
  keyTypes: string[];
  updatedAt: string | null;
  limits: { certMaxDays: number; testCertMaxHours: number; keyTypes: string[] };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: () => void = () => undefined;

export function useSession(session: Session | null, signedOut: () => void): void {
  csrfToken = session?.csrfToken ?? null;
  onSignedOut = signedOut;
}

export async function api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(`/v1${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => null)) as { error?: { code: string; message: string; details?: Record<string, unknown> } } | null;
  if (!res.ok) {
    const error = json?.error ?? { code: 'http_error', message: `HTTP ${res.status}` };
    if (res.status === 401 && !path.startsWith('/session')) onSignedOut();
    throw new ApiError(res.status, error.code, error.message, error.details);
  }
  return json as T;
}

/** A query string from the values that are set. */
export function qs(values: Record<string, string | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** `/factories/<name>` for the factory of the session. */
export const f = (factory: string) => `/factories/${encodeURIComponent(factory)}`;
