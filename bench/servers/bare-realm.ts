import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Realm ceiling: the least a token realm can do for the same request, with node:http and
 * node:crypto only. Parse Basic, SHA-256 the secret, find it in an in-memory Map, sign an ES256
 * JWT (raw r||s) with the claims shape and header size Tollgate's tokens have. What is left
 * between this and Tollgate is the store lookup (SQLite), the policy, the audit and the logging.
 */
export async function startBareRealm(spec: {
  token: { username: string; secret: string };
  tls: { certPem: string };
  service: string;
  issuer: string;
}): Promise<{ port: number; close(): Promise<void> }> {
  const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  const tokens = new Map<string, { subject: string; factory: string }>([
    [sha256(spec.token.secret), { subject: spec.token.username, factory: 'bench' }],
  ]);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // The realm's default header: the key named by its libtrust kid alone (authsvc.tokenKeyHint: kid).
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ23:4567:ABCD:EFGH:IJKL:MNOP' })).toString('base64url');
  const signKey = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };

  const unauthorized = (res: import('node:http').ServerResponse) => {
    res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="bench"' });
    res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Basic ')) return unauthorized(res);
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return unauthorized(res);
    const found = tokens.get(sha256(decoded.slice(colon + 1)));
    if (!found || found.subject !== decoded.slice(0, colon)) return unauthorized(res);
    const access = params.getAll('scope').flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name || !actions || !name.startsWith(`${found.factory}/`)) return [];
      return actions.split(',').includes('pull') ? [{ type, name, actions: ['pull'] }] : [];
    });
    const iat = Math.floor(Date.now() / 1000);
    const payload = {
      iss: spec.issuer,
      sub: found.subject,
      aud: params.get('service') ?? spec.service,
      exp: iat + 900,
      nbf: iat - 10,
      iat,
      jti: randomBytes(16).toString('base64url'),
      access,
    };
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const token = `${input}.${sign('sha256', Buffer.from(input), signKey).toString('base64url')}`;
    const body = JSON.stringify({ token, expires_in: 900, issued_at: new Date(iat * 1000).toISOString() });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
