import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { generateKeyPair, issueCertificate } from '../../shared/pki/index.js';

/**
 * Fixtures for the credential-helper tests: a throw-away PKI on disk and a small mutual-TLS server
 * that plays the gateway's /hub-creds/ endpoint, counting calls.
 */

export const DEVICE_UUID = '3f6c2a7e-9b1d-4c5e-8a2f-1d0e9c8b7a65';

export interface TestPki {
  dir: string;
  rootCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** For the same key, but issued for gateway.test only: a name mismatch when reached as 127.0.0.1. */
  wrongNameServerCertPem: string;
  /** Files a device config can name. */
  files: { certificate: string; privateKey: string; caBundle: string; otherCa: string; otherKey: string };
}

const inOneDay = () => new Date(Date.now() + 24 * 3600_000);

async function selfSignedCa(commonName: string): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const keys = generateKeyPair('ec-p256');
  const certificatePem = await issueCertificate({
    profile: 'root-ca',
    subject: { commonName },
    publicKey: crypto.createPublicKey(keys.publicKeyPem),
    notAfter: new Date(Date.now() + 2 * 24 * 3600_000),
    selfSignPrivateKeyPem: keys.privateKeyPem,
  });
  return { certificatePem, privateKeyPem: keys.privateKeyPem };
}

export async function createTestPki(dir: string): Promise<TestPki> {
  fs.mkdirSync(dir, { recursive: true });
  const root = await selfSignedCa('Tollgate Test Root');
  const other = await selfSignedCa('Somebody Else Root');

  const serverKeys = generateKeyPair('ec-p256');
  const serverCertPem = await issueCertificate({
    profile: 'tls-server',
    subject: { commonName: 'gateway.test' },
    publicKey: crypto.createPublicKey(serverKeys.publicKeyPem),
    notAfter: inOneDay(),
    issuer: root,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });

  const wrongNameServerCertPem = await issueCertificate({
    profile: 'tls-server',
    subject: { commonName: 'gateway.test' },
    publicKey: crypto.createPublicKey(serverKeys.publicKeyPem),
    notAfter: inOneDay(),
    issuer: root,
    dnsNames: ['gateway.test'],
  });

  const deviceKeys = generateKeyPair('ec-p256');
  const deviceCertPem = await issueCertificate({
    profile: 'device-client',
    subject: { commonName: DEVICE_UUID, organizationalUnit: 'devices', organization: 'Test Factory' },
    publicKey: crypto.createPublicKey(deviceKeys.publicKeyPem),
    notAfter: inOneDay(),
    issuer: root,
  });
  const otherKeys = generateKeyPair('ec-p256');

  const write = (name: string, text: string, mode = 0o644) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode });
    return file;
  };
  return {
    dir,
    rootCertPem: root.certificatePem,
    serverCertPem,
    serverKeyPem: serverKeys.privateKeyPem,
    wrongNameServerCertPem,
    files: {
      certificate: write('client.pem', deviceCertPem),
      privateKey: write('client.key', deviceKeys.privateKeyPem, 0o600),
      caBundle: write('gateway-ca.pem', root.certificatePem),
      otherCa: write('other-ca.pem', other.certificatePem),
      otherKey: write('other.key', otherKeys.privateKeyPem, 0o600),
    },
  };
}

/** Writes a device config (JSON) into `dir` and returns its path; paths are relative on purpose. */
export function writeDeviceConfig(dir: string, gateway: string, overrides: Record<string, unknown> = {}): string {
  const file = path.join(dir, `device-${crypto.randomBytes(4).toString('hex')}.json`);
  const config = {
    gateway,
    certificate: 'client.pem',
    privateKey: 'client.key',
    caBundle: 'gateway-ca.pem',
    registries: ['127.0.0.1:5000', 'hub.example.com'],
    ...overrides,
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export interface GatewayAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}

export type Behaviour = (call: number, deviceCn: string | undefined) => GatewayAnswer;

export const issueToken =
  (expiresIn = 300): Behaviour =>
  (call, cn) => ({
    status: 200,
    body: {
      Username: cn,
      Secret: `tgd_secret_${call}_${crypto.randomBytes(8).toString('hex')}`,
      ExpiresAt: new Date(Date.now() + expiresIn * 1000).toISOString(),
      ExpiresIn: expiresIn,
    },
  });

export const refuse =
  (status: number, code: string, message: string, headers?: Record<string, string>): Behaviour =>
  () => ({ status, body: { error: { code, message } }, ...(headers ? { headers } : {}) });

export interface FakeGateway {
  url: string;
  port: number;
  /** Requests to /hub-creds/ so far. */
  calls: number;
  /** Secrets handed out, in order. */
  secrets: string[];
  behaviour: Behaviour;
  close(): Promise<void>;
}

/** A mutual-TLS server answering /hub-creds/ like the gateway does. */
export async function startFakeGateway(pki: TestPki, behaviour: Behaviour = issueToken(), serverCertPem = pki.serverCertPem): Promise<FakeGateway> {
  const state: FakeGateway = {
    url: '',
    port: 0,
    calls: 0,
    secrets: [],
    behaviour,
    close: async () => undefined,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    const send = (answer: GatewayAnswer) => {
      const body = JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(body);
    };
    if (!req.url?.startsWith('/hub-creds')) {
      send({ status: 404, body: { error: { code: 'route_not_found', message: `no route ${req.method} ${req.url}` } } });
      return;
    }
    state.calls += 1;
    const peer = socket.getPeerCertificate();
    if (!peer || !peer.raw) {
      send({ status: 401, body: { error: { code: 'certificate_required', message: 'a client certificate is required' } } });
      return;
    }
    if (!socket.authorized) {
      send({ status: 401, body: { error: { code: 'certificate_untrusted', message: 'the client certificate was not issued by a CA registered with this gateway' } } });
      return;
    }
    const cn = typeof peer.subject.CN === 'string' ? peer.subject.CN : undefined;
    const answer = state.behaviour(state.calls, cn);
    const body = answer.body as { Secret?: unknown };
    if (answer.status === 200 && typeof body.Secret === 'string') state.secrets.push(body.Secret);
    if (answer.delayMs) setTimeout(() => send(answer), answer.delayMs);
    else send(answer);
  };
  const server = https.createServer(
    { key: pki.serverKeyPem, cert: serverCertPem, ca: pki.rootCertPem, requestCert: true, rejectUnauthorized: false },
    handler,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `https://127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = https.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
