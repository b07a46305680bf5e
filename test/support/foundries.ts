import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import crypto, { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { certificatesOfPkcs7 } from '../../shared/pki/pkcs7.js';
import { x509 } from '../../shared/pki/peculiar.js';

/**
 * Foundries' device software, as far as it talks HTTP, replayed byte for byte from its source
 * (fioconfig internal/rotate_*.go and transport/http.go, lmp-device-register src/main.cpp and
 * inc/curl.hpp, aktualizr-lite src/docker/docker.cc with libaktualizr's HttpClient). Each function
 * says which code it follows; nothing here is Tollgate's own client.
 */

export interface Identity {
  /** PEM client certificate and key (Go's tls.LoadX509KeyPair reads SEC1 and PKCS#8 alike). */
  cert: string;
  key: string;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface Endpoint {
  /** Base URL, e.g. https://127.0.0.1:8443 */
  url: string;
  /** The PEM bundle the client trusts (fioconfig: import.tls_cacert_path; lmp-device-register: the system store). */
  ca: string;
  /** TLS server name, when the URL's host is an address the certificate does not name. */
  servername?: string;
}

/** One HTTPS request with Go net/http's framing: a sized body, Content-Length, nothing chunked. */
export function request(endpoint: Endpoint, identity: Identity | null, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  const url = new URL(path, endpoint.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: endpoint.ca,
        ...(endpoint.servername ? { servername: endpoint.servername } : {}),
        ...(identity ? { cert: identity.cert, key: identity.key } : {}),
        agent: false,
        headers: { ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buffer = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buffer, text: buffer.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// ---- fioconfig ---------------------------------------------------------------------------------

/** transport.HttpDo: JSON body, `User-Agent: fioconfig-client/2`, `Content-Type: application/json`, `req.Close`. */
export function fioconfigRequest(endpoint: Endpoint, identity: Identity, method: 'GET' | 'PATCH' | 'POST', path: string, data?: unknown, extra: Record<string, string> = {}): Promise<Answer> {
  const headers = { 'User-Agent': 'fioconfig-client/2', 'Content-Type': 'application/json', Connection: 'close', 'Accept-Encoding': 'gzip', ...extra };
  return request(endpoint, identity, method, path, headers, data === undefined ? Buffer.alloc(0) : JSON.stringify(data));
}

/** A new EC P-256 key as estStep makes it: x509.MarshalECPrivateKey, PEM "EC PRIVATE KEY". */
export function newSec1Key(): { key: string; publicKeyPem: string } {
  const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'sec1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return { key: pair.privateKey, publicKeyPem: pair.publicKey };
}

const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const DIGITAL_SIGNATURE = Buffer.from([3, 2, 7, 128]);
const TLS_WEB_CLIENT_AUTH = Buffer.from([48, 10, 6, 8, 43, 6, 1, 5, 5, 7, 3, 2]);

function rawSubject(certPem: string): Buffer {
  const cert = AsnConvert.parse(new crypto.X509Certificate(certPem).raw, Certificate);
  return Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subject));
}

/**
 * createB64CsrDer: the current certificate's raw subject, the new key, keyUsage digitalSignature
 * and extendedKeyUsage clientAuth, both critical; base64 (standard) of the DER.
 */
export async function estCsrBody(currentCertPem: string, newKeyPem: string): Promise<string> {
  const privateKey = crypto.createPrivateKey(newKeyPem);
  const keys = {
    privateKey: await crypto.webcrypto.subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
    publicKey: await crypto.webcrypto.subtle.importKey('spki', crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: new x509.Name(rawSubject(currentCertPem)),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2'], true)],
  });
  return Buffer.from(csr.rawData).toString('base64');
}

/**
 * estStep's POST and its checks of the answer. `mp-96`: status exactly 201 and content type exactly
 * `application/pkcs7-mime`. `mp-97`: 200 or 201 and a content type starting with it. Then the body
 * is base64 (line breaks ignored, as Go's decoder does) of a PKCS#7 whose first certificate is taken.
 */
export async function fioconfigEst(estUrl: Endpoint, identity: Identity, csrB64: string, version: 'mp-96' | 'mp-97'): Promise<{ answer: Answer; certificatePem?: string; error?: string }> {
  const answer = await request(estUrl, identity, 'POST', `${new URL(estUrl.url).pathname.replace(/\/$/, '')}/simplereenroll`, { 'User-Agent': 'Go-http-client/1.1', 'Content-Type': 'application/pkcs10', 'Accept-Encoding': 'gzip' }, csrB64);
  const ct = String(answer.headers['content-type'] ?? '');
  if (version === 'mp-96') {
    if (answer.status !== 201) return { answer, error: `Unable to obtain new certificate: HTTP_${answer.status} - ${answer.text}` };
    if (ct !== 'application/pkcs7-mime') return { answer, error: `Unexpected content-type return in certificate response: ${ct}` };
  } else {
    if (answer.status !== 200 && answer.status !== 201) return { answer, error: `Unable to obtain new certificate: HTTP_${answer.status} - ${answer.text}` };
    if (!ct.startsWith('application/pkcs7-mime')) return { answer, error: `Unexpected content-type return in certificate response: ${ct}` };
  }
  const der = Buffer.from(answer.text.replace(/[\r\n]/g, ''), 'base64');
  const first = certificatesOfPkcs7(der)[0];
  if (!first) return { answer, error: 'Invalid pkcs7 data in EST response: no certificates' };
  return { answer, certificatePem: new crypto.X509Certificate(first).toString() };
}

/** verifyNewCert: the same raw subject, keyUsage bytes 03 02 07 80 and extendedKeyUsage exactly clientAuth. */
export function fioconfigVerifyNewCert(currentPem: string, newPem: string): string | null {
  if (!rawSubject(currentPem).equals(rawSubject(newPem))) return "New cert's subject does not match current cert's";
  const cert = AsnConvert.parse(new crypto.X509Certificate(newPem).raw, Certificate);
  let digitalSignature = false;
  let clientAuth = false;
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    const value = Buffer.from(ext.extnValue.buffer);
    if (!digitalSignature && ext.extnID === OID_KEY_USAGE) digitalSignature = value.equals(DIGITAL_SIGNATURE);
    else if (!clientAuth && ext.extnID === OID_EXT_KEY_USAGE) clientAuth = value.equals(TLS_WEB_CLIENT_AUTH);
  }
  return digitalSignature && clientAuth ? null : 'Missing required extensions for Digital Signature and/or TLS Web Client Authentication';
}

/** lockStep's body: DeviceUpdate{NextPubKey}, the new key's PKIX public key as PEM. */
export function lockBody(publicKeyPem: string): { next_pubkey: string } {
  return { next_pubkey: publicKeyPem };
}

/** DgEventSync.notify: one DgUpdateEvent in a list. */
export function rotationEvent(type: string, correlationId: string, error: string | null = null) {
  return [
    {
      id: randomUUID(),
      deviceTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      event: { correlationId, success: error === null, targetName: 'intel-corei7-64-lmp-42', version: '42', ...(error ? { details: error } : {}) },
      eventType: { id: type, version: 0 },
    },
  ];
}

export const ROTATION_STEPS = [
  'Generate new certificate',
  'Lock device configuration on server',
  'Update local configuration with new key',
  'Update device specific configuration on server with new key',
  'Finalize aktualizr configuration',
] as const;

// ---- lmp-device-register -----------------------------------------------------------------------

/**
 * boost::property_tree::write_json: every value a string, `/` escaped as `\/`, four-space
 * indentation, objects for nested keys (overrides).
 */
export function ptreeJson(tree: Record<string, string | Record<string, Record<string, string>>>): string {
  const esc = (s: string) =>
    s.replace(/[\\"\/\b\f\n\r\t]/g, (c) => ({ '\\': '\\\\', '"': '\\"', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] as string);
  const write = (node: string | Record<string, unknown>, indent: string): string => {
    if (typeof node === 'string') return `"${esc(node)}"`;
    const inner = Object.entries(node).map(([k, v]) => `${indent}    "${esc(k)}": ${write(v as string | Record<string, unknown>, `${indent}    `)}`);
    return `{\n${inner.join(',\n')}\n${indent}}`;
  };
  return `${write(tree, '')}\n`;
}

/** Curl::PingEndpoint: a HEAD (CURLOPT_NOBODY); any status below 500 means reachable. */
export async function lmpPing(api: Endpoint): Promise<{ reachable: boolean; status: number }> {
  const answer = await request(api, null, 'HEAD', new URL(api.url).pathname, { Accept: '*/*' });
  return { reachable: answer.status < 500, status: answer.status };
}

/**
 * Curl::Post as auth_register_device drives it: `Content-type: application/json`, the token header,
 * no User-Agent. Success is 201 only; every key of the answer becomes a file. On a refusal the
 * client prints `Unable to create device: HTTP_<code>`, then each top-level member as `key: value`
 * (a nested object prints as an empty value), which `printed` reproduces.
 */
export async function lmpRegister(api: Endpoint, headers: Record<string, string>, body: string): Promise<{ answer: Answer; files?: Record<string, string>; printed?: string }> {
  const answer = await request(api, null, 'POST', new URL(api.url).pathname, { Accept: '*/*', 'Content-type': 'application/json', ...headers }, body);
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    // ptree leaves the tree empty on a parse error
  }
  const data = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
  if (answer.status !== 201) {
    const lines = [`Unable to create device: HTTP_${answer.status}`, ...Object.entries(parsed).map(([k, v]) => `${k}: ${data(v)}`)];
    return { answer, printed: `${lines.join('\n')}\n` };
  }
  return { answer, files: Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, data(v)])) };
}

// ---- aktualizr-lite / libaktualizr --------------------------------------------------------------

/**
 * HttpClient::get(url, maxsize) over plain HTTP or HTTPS: CURLOPT_MAXFILESIZE_LARGE fails the
 * transfer when a declared Content-Length exceeds the cap, and the write callback (writeString)
 * fails it once the body received so far would pass the cap, which is what stops a chunked answer.
 */
export function libcurlGet(url: string, maxSize: number, headers: Record<string, string>, tls?: { ca: string; identity?: Identity; servername?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; curlError?: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const options: https.RequestOptions = {
      method: 'GET',
      agent: false,
      headers: { Accept: '*/*', ...headers },
      ...(tls ? { ca: tls.ca, ...(tls.identity ? { cert: tls.identity.cert, key: tls.identity.key } : {}), ...(tls.servername ? { servername: tls.servername } : {}) } : {}),
    };
    const req = (target.protocol === 'https:' ? https : http).request(target, options, (res) => {
      const declared = res.headers['content-length'];
      if (maxSize >= 0 && declared !== undefined && Number(declared) > maxSize) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', curlError: 'Maximum file size exceeded' });
        return;
      }
      let body = Buffer.alloc(0);
      let failed = false;
      res.on('data', (chunk: Buffer) => {
        if (failed) return;
        if (maxSize > 0 && body.length + chunk.length > maxSize) {
          failed = true;
          res.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString('utf8'), curlError: 'Failed writing received data to disk/application' });
          return;
        }
        body = Buffer.concat([body, chunk]);
      });
      res.on('end', () => {
        if (!failed) resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body.toString('utf8') });
      });
      res.on('error', (e) => {
        if (!failed) reject(e);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** What aktualizr-lite's RegistryClient saw of one token exchange, for assertions and figures. */
export interface AuthExchange {
  hubCreds: { status: number; bytes: number; contentLength?: string; chunked: boolean };
  token: { status: number; bytes: number; contentLength?: string; chunked: boolean };
}

/** RegistryClient::BearerAuth: the lowercased header must start with `bearer`; realm, service and scope are required. */
export function parseBearerChallenge(value: string): { realm: string; service: string; scope: string } {
  const header = value.toLowerCase();
  if (!header.startsWith('bearer')) throw new Error(`Unsupported authentication type to access Registry: ${header}`);
  const params: Record<string, string> = {};
  for (const m of header.slice('bearer'.length).matchAll(/\s*([^=,\s]+)\s*=\s*"([^"]*)"\s*,?/g)) params[(m[1] as string).trim()] = (m[2] as string).trim();
  const missing = ['realm', 'service', 'scope'].filter((p) => params[p] === undefined);
  if (missing.length > 0) throw new Error(`Missing required auth param(s): ${missing.join(', ')}`);
  return { realm: params.realm as string, service: params.service as string, scope: params.scope as string };
}

/**
 * RegistryClient::getAppManifest and downloadBlob, for `<registry>/<repo>@<digest>`: a request
 * without credentials; on 401, hub-creds from the gateway (mutual TLS, 1024 bytes at most), then
 * `GET <realm>?service=..&scope=..` with Basic (1024 bytes at most, only `token` read), then the
 * request again with the bearer token. The manifest must hash to its digest; the blob to its own.
 */
export async function aktualizrFetch(options: {
  registry: string;
  repo: string;
  digest: string;
  kind: 'manifest' | 'blob';
  hubCredsUrl: string;
  gatewayCa: string;
  identity: Identity;
  expectedSize?: number;
}): Promise<{ body: Buffer; auth: AuthExchange }> {
  const url = `http://${options.registry}/v2/${options.repo}/${options.kind === 'manifest' ? 'manifests' : 'blobs'}/${options.digest}`;
  const headers: Record<string, string> = options.kind === 'manifest' ? { accept: 'application/vnd.oci.image.manifest.v1+json' } : {};
  const cap = options.kind === 'manifest' ? 16384 : -1;
  const first = await rawGet(url, headers);
  if (first.status !== 401) throw new Error(`expected a 401 challenge, got ${first.status}`);
  const challenge = first.headers['www-authenticate'];
  if (typeof challenge !== 'string') throw new Error('No `www-authenticate` header found in the 401 response');
  const bearer = parseBearerChallenge(challenge);

  const creds = await libcurlGet(options.hubCredsUrl, 1024, {}, { ca: options.gatewayCa, identity: options.identity });
  if (creds.curlError || creds.status !== 200) throw new Error(`Failed to get Docker Registry credentials from ${options.hubCredsUrl}; error: ${creds.curlError ?? creds.status}`);
  const { Username, Secret } = JSON.parse(creds.body) as { Username: string; Secret: string };
  const basic = `basic ${Buffer.from(`${Username}:${Secret}`).toString('base64')}`;
  const token = await libcurlGet(`${bearer.realm}?service=${bearer.service}&scope=${bearer.scope}`, 1024, { authorization: basic });
  if (token.curlError || token.status !== 200) throw new Error(`Failed to get Auth Token at Docker Registry ${bearer.realm}; error: ${token.curlError ?? token.status}`);
  const jwt = (JSON.parse(token.body) as { token?: string }).token;
  if (!jwt) throw new Error(`Got invalid token from Docker Registry: ${token.body}`);

  const second = await rawGet(url, { ...headers, authorization: `bearer ${jwt}` });
  if (second.status !== 200) throw new Error(`Failed to download App ${options.kind}: ${second.status}`);
  if (cap > 0 && second.body.length > cap) throw new Error('Size of received App manifest exceeds the maximum allowed');
  if (options.expectedSize !== undefined && second.body.length !== options.expectedSize) throw new Error('Size of downloaded App blob does not equal to the expected one');
  const hash = crypto.createHash('sha256').update(second.body).digest('hex');
  if (`sha256:${hash}` !== options.digest) throw new Error(`Hash of received App ${options.kind} and the hash specified in Target do not match`);
  const seen = (r: { status: number; body: string; headers: http.IncomingHttpHeaders }) => ({
    status: r.status,
    bytes: Buffer.byteLength(r.body),
    ...(typeof r.headers['content-length'] === 'string' ? { contentLength: r.headers['content-length'] } : {}),
    chunked: r.headers['transfer-encoding'] === 'chunked',
  });
  return { body: second.body, auth: { hubCreds: seen(creds), token: seen(token) } };
}

function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', agent: false, headers: { Accept: '*/*', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
