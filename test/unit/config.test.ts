import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { environmentVariableFor, loadConfig, realmUrl } from '../../shared/config.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('configuration', () => {
  it('has safe defaults with no file at all: loopback listeners, hour-long device tokens', () => {
    const c = loadConfig({ env: {}, cwd: dir });
    expect(c.gateway.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(c.admin.listen.host).toBe('127.0.0.1');
    expect(c.authsvc.listen).toEqual({ host: '127.0.0.1', port: 5001 });
    expect(c.gateway.tokenTtlSeconds).toBe(3600);
    expect(c.databasePath).toBe(join(dir, 'data', 'tollgate.db'));
    expect(realmUrl(c)).toBe('http://127.0.0.1:5001/token');
  });

  it('reads YAML and JSON, relative paths against the file', () => {
    const y = loadConfig({ file: file('t.yml', 'authsvc:\n  service: reg\n  tokenTtlSeconds: 600\ndataDir: db\n'), env: {} });
    expect(y.authsvc.service).toBe('reg');
    expect(y.authsvc.tokenTtlSeconds).toBe(600);
    expect(y.databasePath).toBe(join(dir, 'db', 'tollgate.db'));
    const j = loadConfig({ file: file('t.json', '{"gateway":{"listen":{"port":9443}}}'), env: {} });
    expect(j.gateway.listen.port).toBe(9443);
  });

  it('applies environment overrides derived from the key path', () => {
    expect(environmentVariableFor(['authsvc', 'tokenTtlSeconds'])).toBe('TOLLGATE_AUTHSVC_TOKEN_TTL_SECONDS');
    const c = loadConfig({
      env: { TOLLGATE_AUTHSVC_TOKEN_TTL_SECONDS: '120', TOLLGATE_GATEWAY_SERVER_NAMES: 'gw.example, gw2' },
      cwd: dir,
    });
    expect(c.authsvc.tokenTtlSeconds).toBe(120);
    expect(c.gateway.serverNames).toEqual(['gw.example', 'gw2']);
  });

  it.each([
    ['an unknown key', 'gatway:\n  listen: {}\n', /gatway/],
    ['a port out of range', 'gateway:\n  listen:\n    port: 70000\n', /gateway\.listen\.port/],
    ['a TTL below the registry minimum', 'authsvc:\n  tokenTtlSeconds: 10\n', /authsvc\.tokenTtlSeconds/],
    ['a realm path that is not a path', 'authsvc:\n  realmPath: token\n', /authsvc\.realmPath: must be an absolute URL path/],
    ['a list at the top', '- a\n- b\n', /top level must be a mapping/],
    ['broken YAML', 'gateway: [\n', /not valid YAML/],
    ['half a TLS pair', 'gateway:\n  tls:\n    certFile: a.pem\n', /certFile and keyFile go together/],
  ])('refuses %s with the key and the reason', (_what, content, message) => {
    const p = file('bad.yml', content);
    expect(() => loadConfig({ file: p, env: {} })).toThrow(message);
    try {
      loadConfig({ file: p, env: {} });
    } catch (e) {
      expect((e as Error).message.startsWith(p)).toBe(true);
    }
  });

  it('runs the store with synchronous=NORMAL unless the file or TOLLGATE_STORE_SQLITE_SYNCHRONOUS asks for FULL', () => {
    expect(loadConfig({ env: {}, cwd: dir }).store.sqlite.synchronous).toBe('NORMAL');
    expect(loadConfig({ file: file('s.yml', 'store:\n  sqlite:\n    synchronous: FULL\n'), env: {} }).store.sqlite.synchronous).toBe('FULL');
    expect(loadConfig({ env: { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'FULL' }, cwd: dir }).store.sqlite.synchronous).toBe('FULL');
    expect(() => loadConfig({ env: { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'OFF' }, cwd: dir })).toThrow(
      /environment TOLLGATE_STORE_SQLITE_SYNCHRONOUS: store\.sqlite\.synchronous/,
    );
  });

  it('names the environment variable when an override is wrong', () => {
    expect(() => loadConfig({ env: { TOLLGATE_GATEWAY_LISTEN_PORT: 'eighty' }, cwd: dir })).toThrow(
      /environment TOLLGATE_GATEWAY_LISTEN_PORT: gateway\.listen\.port/,
    );
  });

  it('refuses a missing file and an oversized one', () => {
    expect(() => loadConfig({ file: join(dir, 'nope.yml'), env: {} })).toThrow(/cannot read/);
    expect(() => loadConfig({ file: file('big.yml', '#'.repeat(300_000)), env: {} })).toThrow(/larger than/);
  });
});

describe('configuration: names that are object keys', () => {
  it.each([
    ['a user', 'authsvc:\n  users:\n    __proto__: { password: "$2b$10$sya/8zwxFaLOVBfMLLI7lOJwd0ZzyySdhJBGLgd2OTxi3BL42tshG" }\n', /authsvc\.users\.__proto__: user names are 1-128 letters, digits and "\._@\+-"/],
    ['a user (JSON)', '{"authsvc": {"users": {"__proto__": {"password": "$2b$10$sya/8zwxFaLOVBfMLLI7lOJwd0ZzyySdhJBGLgd2OTxi3BL42tshG"}}}}', /authsvc\.users\.__proto__: user names are/],
    ['a user label', 'authsvc:\n  users:\n    bob:\n      password: "$2b$10$sya/8zwxFaLOVBfMLLI7lOJwd0ZzyySdhJBGLgd2OTxi3BL42tshG"\n      labels: { __proto__: [x] }\n', /authsvc\.users\.bob\.labels\.__proto__: label names are/],
    ['an ACL label requirement', 'authsvc:\n  acl:\n    - { match: { labels: { __proto__: x } }, actions: [pull] }\n', /authsvc\.acl\.0\.match\.labels\.__proto__: /],
  ])('refuses %s named __proto__ with the schema\'s message instead of dropping it', (_what, content, message) => {
    const p = file(content.startsWith('{') ? 'proto.json' : 'proto.yml', content);
    expect(() => loadConfig({ file: p, env: {} })).toThrow(message);
  });
});
