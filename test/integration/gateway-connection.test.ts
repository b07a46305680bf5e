import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminService, type Principal } from '../../admin/service.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { createFactory, createOnlineCa, type AuthorityDeps } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import type { GatewayTlsMaterial } from '../../shared/gateway-tls.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair } from '../../shared/pki/index.js';
import { openAuthority } from '../../shared/runtime.js';
import type { SqlStore } from '../../shared/store/index.js';

/**
 * The gateway reads a connection's client certificate once and keeps it for the connection's
 * later requests. That is only sound if the certificate cannot change under it (renegotiation is
 * refused) and if the device behind it is still judged from the store on every request.
 */

const operator: Principal = { kind: 'operator' };
const system = { actor: 'system' };

let dir: string;
let deps: AuthorityDeps & { store: SqlStore };
let service: AdminService;
let material: GatewayTlsMaterial;
let gateway: RunningGateway;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-gateway-conn-'));
  const config = loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: '0' }, cwd: dir });
  deps = openAuthority(config);
  service = new AdminService(deps);
  material = await developmentGatewayTls(config);
  await createOnlineCa(deps, system, await createFactory(deps, system, 'acme'));
  gateway = await startGateway({
    config,
    deps,
    identity: { certPem: material.certPem, keyPem: material.keyPem },
    log: createLogger('gateway-conn-test', 'silent'),
  });
});

afterAll(async () => {
  await gateway?.close();
  deps?.store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function enroll(): Promise<{ uuid: string; key: string; cert: string }> {
  const uuid = randomUUID();
  const pair = generateKeyPair('ec-p256');
  const csr = await createCsr({
    subject: { commonName: uuid, organizationalUnit: 'acme' },
    ...pair,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'],
  });
  const enrolled = await service.enroll(operator, 'acme', { csr });
  return { uuid, key: pair.privateKeyPem, cert: enrolled.certificate };
}

/** A raw keep-alive TLS connection that sends one request at a time and reads one answer each. */
class Connection {
  private buffer = '';
  private waiting: ((answer: Answer | null) => void) | null = null;
  closed = false;

  private constructor(readonly socket: tls.TLSSocket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.tryAnswer();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
      this.waiting = null;
    });
  }

  static open(creds: { key: string; cert: string }, maxVersion: tls.SecureVersion = 'TLSv1.3'): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: gateway.port, ca: material.caPem, servername: 'localhost', key: creds.key, cert: creds.cert, maxVersion });
      socket.once('secureConnect', () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  private tryAnswer(): void {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0 || !this.waiting) return;
    const head = this.buffer.slice(0, end);
    // A HEAD answer announces the length of a body it does not carry.
    const length = this.bodiless ? 0 : Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    const text = this.buffer.slice(end + 4, end + 4 + length);
    this.buffer = this.buffer.slice(end + 4 + length);
    const done = this.waiting;
    this.waiting = null;
    const [statusLine = '', ...fields] = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
    done({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, text, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
  }

  private bodiless = false;

  get(path: string): Promise<Answer | null> {
    return this.request('GET', path);
  }

  request(method: string, path: string): Promise<Answer | null> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(null);
      this.waiting = resolve;
      this.bodiless = method === 'HEAD';
      this.socket.write(`${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${method === 'POST' ? 'Content-Length: 0\r\n' : ''}\r\n`);
    });
  }
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: Record<string, unknown>;
}

const codeOf = (a: { body: Record<string, unknown> } | null | undefined) => (a?.body.error as { code?: string } | undefined)?.code;

describe('gateway: one certificate per connection, the device judged on every request', () => {
  it('answers each request on a kept-alive connection from the device state of that moment', async () => {
    const device = await enroll();
    const conn = await Connection.open(device);
    try {
      const first = await conn.get('/hub-creds/');
      const second = await conn.get('/hub-creds/');
      expect([first?.status, second?.status]).toEqual([200, 200]);
      expect(first?.body.Secret).not.toBe(second?.body.Secret);
      await service.setDeviceState(operator, 'acme', device.uuid, 'disabled', 'maintenance');
      const refused = await conn.get('/hub-creds/');
      expect([refused?.status, codeOf(refused)]).toEqual([403, 'device_disabled']);
      await service.setDeviceState(operator, 'acme', device.uuid, 'active', null);
      expect((await conn.get('/device'))?.body.state).toBe('active');
      await service.setDeviceState(operator, 'acme', device.uuid, 'revoked', 'stolen');
      const revoked = await conn.get('/hub-creds/');
      expect([revoked?.status, codeOf(revoked)]).toEqual([403, 'device_revoked']);
    } finally {
      conn.socket.destroy();
    }
  });

  it('drops a TLS 1.2 connection that tries to renegotiate after its first request', async () => {
    const device = await enroll();
    const conn = await Connection.open(device, 'TLSv1.2');
    try {
      expect(conn.socket.getProtocol()).toBe('TLSv1.2');
      expect((await conn.get('/hub-creds/'))?.status).toBe(200);
      const closed = new Promise<string>((resolve) => {
        if (conn.closed) resolve('closed');
        conn.socket.once('close', () => resolve('closed'));
        setTimeout(() => resolve('still open'), 5_000).unref();
      });
      expect(conn.socket.renegotiate({ rejectUnauthorized: true }, () => undefined)).toBe(true);
      // The server closes the connection instead of renegotiating.
      expect(await closed).toBe('closed');
      expect(await conn.get('/hub-creds/')).toBeNull();
    } finally {
      conn.socket.destroy();
    }
  });
});

describe('gateway: the /hub-creds/ answer, byte for byte what devices have always read', () => {
  it('answers a mint as JSON with no-store, under every spelling of the path the gateway has accepted', async () => {
    const device = await enroll();
    const conn = await Connection.open(device);
    try {
      for (const path of ['/hub-creds/', '/hub-creds', '/hub-creds/?refresh=1', '/HUB-CREDS/', '/Hub-Creds']) {
        const a = await conn.get(path);
        expect(a?.status, path).toBe(200);
        expect(a?.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(a?.headers['cache-control']).toBe('no-store');
        expect(a?.headers['content-length']).toBe(String(Buffer.byteLength(a?.text ?? '')));
        expect(a?.headers).not.toHaveProperty('x-powered-by');
        expect(a?.headers).not.toHaveProperty('etag');
        expect(Object.keys(a?.body ?? {})).toEqual(['Username', 'Secret', 'ExpiresAt', 'ExpiresIn']);
        expect(a?.body.Username).toBe(device.uuid);
      }
      const head = await conn.request('HEAD', '/hub-creds/');
      expect([head?.status, head?.headers['content-type'], head?.text]).toEqual([200, 'application/json; charset=utf-8', '']);
    } finally {
      conn.socket.destroy();
    }
  });

  it('leaves other methods and longer paths to the routes that answer them: 404 route_not_found', async () => {
    const device = await enroll();
    const conn = await Connection.open(device);
    try {
      const post = await conn.request('POST', '/hub-creds/');
      expect([post?.status, codeOf(post)]).toEqual([404, 'route_not_found']);
      expect((post?.body.error as { message: string }).message).toBe('no route POST /hub-creds/');
      const longer = await conn.get('/hub-creds/x');
      expect([longer?.status, codeOf(longer)]).toEqual([404, 'route_not_found']);
      const doubled = await conn.get('//hub-creds/');
      expect([doubled?.status, codeOf(doubled)]).toEqual([404, 'route_not_found']);
    } finally {
      conn.socket.destroy();
    }
  });

  it('refuses a connection without a client certificate with 401 certificate_required, as JSON', async () => {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: gateway.port, ca: material.caPem, servername: 'localhost' });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    const text = await new Promise<string>((resolve) => {
      let buffer = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (buffer += d));
      socket.on('close', () => resolve(buffer));
      socket.write('GET /hub-creds/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    expect(text).toMatch(/^HTTP\/1\.1 401 /);
    expect(text).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/i);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'certificate_required' } });
  });
});
