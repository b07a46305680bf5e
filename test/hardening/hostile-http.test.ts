import Database from 'better-sqlite3';
import crypto, { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdmin, type RunningAdmin } from '../../admin/server.js';
import { AdminService } from '../../admin/service.js';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createOnlineCa } from '../../shared/authority/index.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair, issueCertificate } from '../../shared/pki/index.js';
import { createTestAuthority, OPERATOR, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * A catalogue of hostile requests sent as raw bytes over real sockets to the three listeners: the
 * gateway (mutual TLS, with a valid device certificate, so the refusal is the input's and not the
 * missing identity's), the realm and the admin API (with valid credentials, for the same reason).
 * Each must end in a 4xx or a clean close, never a 5xx or a hang, and must change nothing in the
 * database except for audit records of refusals.
 */

const log = createLogger('hostile', 'silent');
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** A hostile request that has not been answered or closed within this is a hang. */
const ANSWER_WITHIN_MS = 5_000;

interface Target {
  name: 'gateway' | 'realm' | 'admin';
  connect(): net.Socket;
}

interface Outcome {
  /** 0 when the server closed without an HTTP answer. */
  status: number;
  closed: boolean;
  elapsedMs: number;
}

/** Writes `chunks` (waiting `gapMs` between them) and waits for the server to answer and close. */
function exchange(target: Target, chunks: readonly (string | Buffer)[], options: { gapMs?: number; waitMs?: number } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = target.connect();
    let data = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0);
      socket.destroy();
      resolve({ status, closed, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(finish, options.waitMs ?? ANSWER_WITHIN_MS);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    // A reset while we still write is a close too: the server hung up on us.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    const ready = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
    socket.once(ready, async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    });
  });
}

/** A 4xx, or a close without a 5xx; anything else (2xx, 5xx, a hang) is a defect. */
function expectRefusedCleanly(outcome: Outcome, what: string): void {
  const refused = outcome.status >= 400 && outcome.status < 500;
  const cleanClose = outcome.status === 0 && outcome.closed;
  expect(refused || cleanClose, `${what}: status ${outcome.status}, closed ${outcome.closed}`).toBe(true);
}

// ---- database snapshots ---------------------------------------------------------------------

type Snapshot = Map<string, Set<string>>;

function snapshot(path: string): Snapshot {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    const snap: Snapshot = new Map();
    for (const { name } of tables) {
      const rows = db.prepare(`SELECT * FROM "${name}"`).all();
      snap.set(name, new Set(rows.map((r) => JSON.stringify(r))));
    }
    return snap;
  } finally {
    db.close();
  }
}

/** Rows that appeared or vanished, per table. */
function diff(before: Snapshot, after: Snapshot): { added: Map<string, string[]>; removed: Map<string, string[]> } {
  const added = new Map<string, string[]>();
  const removed = new Map<string, string[]>();
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(name) ?? new Set<string>();
    const a = after.get(name) ?? new Set<string>();
    const plus = [...a].filter((r) => !b.has(r));
    const minus = [...b].filter((r) => !a.has(r));
    if (plus.length) added.set(name, plus);
    if (minus.length) removed.set(name, minus);
  }
  return { added, removed };
}

// ---- the services ---------------------------------------------------------------------------

let t: TestAuthority;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;
let authsvc: RunningAuthsvc;
let admin: RunningAdmin;
let device: { uuid: string; key: string; cert: string };
let deviceCreds: Credentials;
let adminSecret: string;
let targets: Record<Target['name'], Target>;

beforeAll(async () => {
  t = await createTestAuthority({
    // Rate limits would turn the catalogue's many refusals from one address into 429s, which would
    // hide whether each input on its own is handled; they are tested on their own elsewhere.
    config: {
      limits: { enabled: false },
      gateway: { listen: { host: '127.0.0.1', port: 0 } },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    },
  });
  const acme = await t.factory('acme');
  await t.factory('other');
  await t.signingKey();
  await createOnlineCa(t.deps, OPERATOR, acme);
  const service = new AdminService(t.deps);
  const pair = generateKeyPair('ec-p256');
  const uuid = randomUUID();
  const csr = await createCsr({ subject: { commonName: uuid, organizationalUnit: 'acme' }, ...pair, keyUsage: ['digitalSignature'], extendedKeyUsage: [CLIENT_AUTH] });
  const enrolled = await service.enroll({ kind: 'operator' }, 'acme', { csr });
  device = { uuid, key: pair.privateKeyPem, cert: enrolled.certificate };
  deviceCreds = await t.deviceToken((await t.deps.store.getDevice(uuid))!);
  adminSecret = (await t.apiToken(acme, ['devices:read', 'devices:write', 'tokens:write'])).secret;

  material = await developmentGatewayTls(t.config);
  gateway = await startGateway({ config: t.config, deps: t.deps, identity: { certPem: material.certPem, keyPem: material.keyPem }, log });
  authsvc = await startAuthsvc({ config: t.config, deps: t.deps, log });
  admin = await startAdmin({ config: t.config, deps: t.deps, log, gatewayCa: material.caPem });
  targets = {
    gateway: {
      name: 'gateway',
      connect: () => tls.connect({ host: '127.0.0.1', port: gateway.port, ca: material.caPem, servername: 'localhost', key: device.key, cert: device.cert }),
    },
    realm: { name: 'realm', connect: () => net.connect({ host: '127.0.0.1', port: authsvc.port }) },
    admin: { name: 'admin', connect: () => net.connect({ host: '127.0.0.1', port: admin.port }) },
  };
});

afterAll(async () => {
  await Promise.all([gateway?.close(), authsvc?.close(), admin?.close()]);
  t?.cleanup();
});

/** The credentials each listener needs, so that a refusal is the hostile input's doing. */
function authHeader(name: Target['name']): string {
  if (name === 'realm') return `Authorization: ${basicAuthorization(deviceCreds.username, deviceCreds.secret)}\r\n`;
  if (name === 'admin') return `Authorization: Bearer ${adminSecret}\r\n`;
  return '';
}

const PATHS: Record<Target['name'], string> = {
  gateway: '/hub-creds/',
  realm: '/token?service=tollgate-registry',
  admin: '/v1/factories/acme/devices',
};

function request(name: Target['name'], line: string, headers = '', body: string | Buffer = ''): Buffer {
  const head = `${line}\r\nHost: localhost\r\nConnection: close\r\n${authHeader(name)}${headers}${body.length ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

describe('hostile HTTP input over real sockets', () => {
  it('answers the honest control requests with 200 on every listener', async () => {
    for (const name of ['gateway', 'realm', 'admin'] as const) {
      const outcome = await exchange(targets[name], [request(name, `GET ${PATHS[name]} HTTP/1.1`)]);
      expect(outcome.status, name).toBe(200);
    }
  });

  it('refuses every hostile request with a 4xx or a clean close and leaves the database as it was', async () => {
    const cases: { what: string; name: Target['name']; bytes: Buffer; status?: number }[] = [];
    const add = (what: string, name: Target['name'], bytes: Buffer, status?: number) => cases.push({ what, name, bytes, ...(status ? { status } : {}) });

    for (const name of ['gateway', 'realm', 'admin'] as const) {
      add('a 20 KiB header', name, request(name, `GET ${PATHS[name]} HTTP/1.1`, `X-Filler: ${'a'.repeat(20 * 1024)}\r\n`), 431);
      add('a NUL byte in the path', name, request(name, `GET ${PATHS[name]}%00 HTTP/1.1`));
      add('a raw NUL byte in the request line', name, Buffer.concat([Buffer.from('GET /\0x HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1')]));
      add('invalid UTF-8 in the path', name, request(name, `GET ${PATHS[name]}%ff%fe HTTP/1.1`));
      add('raw bytes above 0x7f in the path', name, request(name, `GET ${PATHS[name]}\xff\xfe HTTP/1.1`));
      add('a traversal path', name, request(name, `GET /../../etc/passwd HTTP/1.1`));
      add('a garbage request line', name, Buffer.from('HELLO\r\n\r\n'));
      add('a conflicting Content-Length', name, request(name, `POST ${PATHS[name]} HTTP/1.1`, 'Content-Length: 5\r\nContent-Length: 7\r\n'));
      add('a NUL in a header value', name, request(name, `GET ${PATHS[name]} HTTP/1.1`, 'X-Evil: a\0b\r\n'));
    }

    // The realm: scopes and parameters.
    add('service given twice', 'realm', request('realm', 'GET /token?service=tollgate-registry&service=other&scope=repository:acme/app:pull HTTP/1.1'), 400);
    add('a 9 KiB form body', 'realm', request('realm', 'POST /token HTTP/1.1', 'Content-Type: application/x-www-form-urlencoded\r\n', `grant_type=password&x=${'a'.repeat(9 * 1024)}`), 413);
    add('invalid UTF-8 in a form body', 'realm', request('realm', 'POST /token HTTP/1.1', 'Content-Type: application/x-www-form-urlencoded\r\n', Buffer.from([0x67, 0x3d, 0xff, 0xfe, 0x00])));
    add('a 9 KiB query', 'realm', request('realm', `GET /token?service=tollgate-registry&x=${'a'.repeat(9 * 1024)} HTTP/1.1`), 414);

    // The admin API: bodies and path parameters.
    const json = 'Content-Type: application/json\r\n';
    const devices = 'POST /v1/factories/acme/devices HTTP/1.1';
    add('malformed JSON', 'admin', request('admin', devices, json, '{"csr": '), 400);
    add('a JSON array', 'admin', request('admin', devices, json, '[1,2]'), 400);
    add('invalid UTF-8 in JSON', 'admin', request('admin', devices, json, Buffer.from([0x7b, 0x22, 0x63, 0xff, 0x22, 0x3a, 0x31, 0x7d])));
    add('a NUL in a JSON string', 'admin', request('admin', devices, json, JSON.stringify({ csr: 'a\u0000b' })));
    add('a body over 64 KiB', 'admin', request('admin', devices, json, JSON.stringify({ csr: 'a'.repeat(70 * 1024) })), 413);
    add('a deeply nested JSON body', 'admin', request('admin', devices, json, `${'['.repeat(5000)}${']'.repeat(5000)}`));
    add('a prototype-pollution body', 'admin', request('admin', 'POST /v1/factories/acme/tokens HTTP/1.1', json, '{"__proto__": {"scopes": ["containers:write"]}, "constructor": {"prototype": {"x": 1}}}'));
    add('traversal in the factory parameter', 'admin', request('admin', 'GET /v1/factories/..%2fother/devices HTTP/1.1'));
    add('traversal in the uuid parameter', 'admin', request('admin', 'GET /v1/factories/acme/devices/..%2f..%2fother HTTP/1.1'));
    add('an upper-case factory', 'admin', request('admin', 'GET /v1/factories/ACME/devices HTTP/1.1'));
    add("another factory's devices", 'admin', request('admin', 'GET /v1/factories/other/devices HTTP/1.1'), 403);
    add('a token for scopes the caller lacks', 'admin', request('admin', 'POST /v1/factories/acme/tokens HTTP/1.1', json, JSON.stringify({ scopes: ['catalog:read'] })));
    add('duplicated query parameters', 'admin', request('admin', 'GET /v1/factories/acme/devices?state=active&state=revoked HTTP/1.1'));

    // The gateway: the device endpoints take no bodies and no methods but GET.
    add('a POST with a body', 'gateway', request('gateway', 'POST /hub-creds/ HTTP/1.1', json, '{"factory":"other"}'));
    add('a traversal in the path', 'gateway', request('gateway', 'GET /hub-creds/..%2f..%2fdevice HTTP/1.1'));

    const before = snapshot(t.config.databasePath);
    const outcomes = await Promise.all(cases.map(async (c) => ({ c, outcome: await exchange(targets[c.name], [c.bytes]) })));
    for (const { c, outcome } of outcomes) {
      expectRefusedCleanly(outcome, `${c.name}: ${c.what}`);
      if (c.status) expect(outcome.status, `${c.name}: ${c.what}`).toBe(c.status);
    }
    const after = snapshot(t.config.databasePath);
    const { added, removed } = diff(before, after);
    // Nothing is removed but the old value of the audit log's AUTOINCREMENT counter.
    expect([...removed.keys()].filter((k) => k !== 'sqlite_sequence')).toEqual([]);
    for (const [table, rows] of added) {
      if (table === 'sqlite_sequence') continue; // the audit log's AUTOINCREMENT counter
      expect(table, rows.join('\n')).toBe('audit_log');
      for (const row of rows) expect((JSON.parse(row) as { outcome: string }).outcome, row).toBe('denied');
    }
  });

  it('grants nothing for traversal, upper-case, NUL and non-UTF-8 repository names in a scope', async () => {
    // The distribution token spec has the realm drop entries it does not understand rather than
    // fail the whole request, so these answer 200 with an empty access list. A control scope in
    // the same request proves the token is not empty for another reason.
    const hostile = ['acme/../other/app', 'acme/%2e%2e/other/app', 'acme/..%2fother/app', '..%2fother/app', 'ACME/App', 'Acme/app', 'acme/app%00', 'acme/%ff', 'acme//app', '/acme/app', 'acme/app/'];
    for (const name of hostile) {
      const res = await fetch(`${authsvc.realmUrl}?service=tollgate-registry&scope=repository:${name}:pull&scope=repository:acme/control:pull`, {
        headers: { authorization: basicAuthorization(deviceCreds.username, deviceCreds.secret) },
      });
      expect(res.status, name).toBe(200);
      const token = ((await res.json()) as { token: string }).token;
      const access = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown }).access;
      expect(access, name).toEqual([{ type: 'repository', name: 'acme/control', actions: ['pull'] }]);
    }
  });

  it('closes a connection whose request line never finishes within the header timeout', { timeout: 40_000 }, async () => {
    // One byte a second keeps the socket busy without ever completing the request line.
    const drip = Array.from({ length: 60 }, (_, i) => (i === 0 ? 'GET /healthz HTTP/1.1\r\nX-Slow: ' : 'a'));
    const outcomes = await Promise.all((['gateway', 'realm', 'admin'] as const).map((name) => exchange(targets[name], drip, { gapMs: 1000, waitMs: 35_000 })));
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome.closed, `listener ${i}`).toBe(true);
      expect(outcome.status === 0 || outcome.status === 408, `listener ${i}: ${outcome.status}`).toBe(true);
      expect(outcome.elapsedMs, `listener ${i}`).toBeLessThanOrEqual(20_000);
    }
  });
});

describe('identity attacks at the gateway', () => {
  it("refuses a certificate from factory A's CA that claims factory B in its OU", async () => {
    const acme = await t.deps.store.getFactoryByName('acme');
    const ca = (await t.deps.store.listDeviceCas({ factoryId: acme!.id })).find((c) => c.kind === 'online' && c.state === 'active')!;
    const pair = generateKeyPair('ec-p256');
    const cert = await issueCertificate({
      profile: 'device-client',
      subject: { commonName: randomUUID(), organizationalUnit: 'other' },
      publicKey: crypto.createPublicKey(pair.publicKeyPem),
      notAfter: new Date(Date.now() + 86_400_000),
      issuer: { certificatePem: ca.certificatePem, privateKeyPem: await t.deps.keys.get(ca.keyRef!) },
    });
    const crossed: Target = {
      name: 'gateway',
      connect: () => tls.connect({ host: '127.0.0.1', port: gateway.port, ca: material.caPem, servername: 'localhost', key: pair.privateKeyPem, cert }),
    };
    const before = snapshot(t.config.databasePath);
    for (const path of ['/hub-creds/', '/device']) {
      const outcome = await exchange(crossed, [request('gateway', `GET ${path} HTTP/1.1`)]);
      expect([401, 403], `${path}: ${outcome.status}`).toContain(outcome.status);
    }
    // No device, no token came of it.
    const { added } = diff(before, snapshot(t.config.databasePath));
    expect([...added.keys()].filter((k) => k !== 'audit_log' && k !== 'sqlite_sequence')).toEqual([]);
  });
});
