import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { developmentGatewayTls } from '../../shared/development.js';
import { isTollgateError } from '../../shared/errors.js';
import { gatewayCaForDevices, gatewayTls } from '../../shared/gateway-tls.js';
import { CLI } from '../support/topology.js';

/**
 * The gateway's TLS material comes from `gateway.tls`; only development mode (`tollgate up`)
 * generates a development PKI in its place. Outside it, a missing key stops the start, by name.
 */

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-gateway-startup-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration file in its own directory; `tls` is the gateway.tls mapping, if any. */
function configIn(sub: string, options: { tls?: string; development?: boolean } = {}): string {
  const file = join(dir, sub, 'tollgate.yml');
  mkdirSync(join(dir, sub), { recursive: true });
  const tls = options.tls ? `, tls: ${options.tls}` : '';
  writeFileSync(file, `dataDir: data\npkiDir: certs\nlog: { level: silent }\ndevelopment: ${options.development === true}\ngateway: { listen: { host: 127.0.0.1, port: 0 }${tls} }\n`);
  return file;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isTollgateError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return 'resolved';
}

describe('gateway TLS at start-up', () => {
  it('serve gateway without gateway.tls exits with an error naming the missing keys, and generates nothing', () => {
    const file = configIn('production');
    const r = spawnSync(process.execPath, [CLI, 'serve', 'gateway', '--config', file], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tollgate: gateway\.tls\.certFile and gateway\.tls\.keyFile are not set .*\(gateway_tls_missing\)\n$/);
    expect(existsSync(join(dir, 'production', 'certs', 'tls'))).toBe(false);
  });

  it('names the configured file it cannot read', async () => {
    const config = loadConfig({ file: configIn('unreadable', { tls: '{ certFile: missing.pem, keyFile: missing.key }' }) });
    expect(await codeOf(gatewayTls(config))).toMatch(/^gateway_tls_unreadable: gateway\.tls\.certFile: cannot read .*missing\.pem/);
  });

  it('uses the development PKI in development mode, and the configured files otherwise', async () => {
    const development = loadConfig({ file: configIn('development', { development: true }) });
    const generated = await gatewayTls(development);
    expect(generated.caFile).toBe(join(dir, 'development', 'certs', 'tls', 'ca.pem'));
    expect(await gatewayCaForDevices(development)).toBe(generated.caPem);

    const material = await developmentGatewayTls(development);
    const tlsDir = join(dir, 'development', 'certs', 'tls');
    const configured = loadConfig({ file: configIn('configured', { tls: `{ certFile: ${join(tlsDir, 'server.pem')}, keyFile: ${join(tlsDir, 'server.key')}, caFile: ${material.caFile} }` }) });
    const read = await gatewayTls(configured);
    expect([read.certPem, read.keyPem, read.caPem]).toEqual([material.certPem, material.keyPem, material.caPem]);
  });

  it('lets the local CLI hand out a development CA that exists, but never generate one outside development mode', async () => {
    const fresh = loadConfig({ file: configIn('fresh') });
    expect(await codeOf(gatewayCaForDevices(fresh))).toMatch(/^gateway_tls_missing/);
    await developmentGatewayTls(loadConfig({ file: configIn('fresh', { development: true }) }));
    expect(await gatewayCaForDevices(loadConfig({ file: configIn('fresh') }))).toContain('BEGIN CERTIFICATE');
  });
});
