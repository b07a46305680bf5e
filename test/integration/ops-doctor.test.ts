import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryTokenSettings, writeRegistryConfig } from '../../authsvc/registry-config.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import type { Finding } from '../../cli/doctor/findings.js';
import { runDoctor } from '../../cli/doctor/run.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { developmentGatewayTls } from '../../shared/development.js';
import { createLogger } from '../../shared/log.js';
import type { SigningKeyRecord } from '../../shared/store/index.js';
import { freePort } from '../support/ports.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { createTestAuthority, type TestAuthority } from '../support/store.js';
import { CLI } from '../support/topology.js';

/**
 * `tollgate doctor` against real registries, one configured from Tollgate's files and one
 * misconfigured the ways that happen: another service name, another realm, a stale root bundle.
 */

const log = createLogger('ops-doctor-test', 'silent');

let t: TestAuthority;
let authsvc: RunningAuthsvc;
let gateway: RunningGateway;
let active: SigningKeyRecord;
let stale: SigningKeyRecord;
const registries: RunningRegistry[] = [];

function token28(file: string): Record<string, unknown> {
  return (parseYaml(file) as { auth: { token: Record<string, unknown> } }).auth.token;
}

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const errors = (findings: readonly Finding[]) => findings.filter((f) => f.severity === 'error').map((f) => f.id);

beforeAll(async () => {
  const [authsvcPort, gatewayPort] = [await freePort(), await freePort()];
  t = await createTestAuthority({ config: { authsvc: { listen: { host: '127.0.0.1', port: authsvcPort } }, gateway: { listen: { host: '127.0.0.1', port: gatewayPort } } } });
  stale = await t.signingKey({ activate: false });
  active = await t.signingKey();
  authsvc = await startAuthsvc({ config: t.config, deps: t.deps, log, keyringPollMs: 0 });
  const tls = await developmentGatewayTls(t.config);
  gateway = await startGateway({ config: t.config, deps: t.deps, identity: { certPem: tls.certPem, keyPem: tls.keyPem }, log });
});

afterAll(async () => {
  await Promise.all([authsvc?.close(), gateway?.close(), ...registries.map((r) => r.stop())]);
  t?.cleanup();
});

describe('tollgate doctor', () => {
  it('finds nothing wrong with a registry configured from Tollgate\'s files', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'good'), { ...registryTokenSettings(t.config), keys: await t.deps.store.listSigningKeys() });
    const registry = await startRegistry({ authToken: token28(files.auth28Yaml) });
    registries.push(registry);
    const findings = await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: files.paths.auth28, registryUrl: registry.url });
    expect(errors(findings)).toEqual([]);
    expect(findings.map((f) => f.id)).toEqual(expect.arrayContaining(['signing_key', 'realm', 'service', 'issuer', 'active_key_trusted', 'realm', 'gateway', 'clock']));
  });

  it('names each mismatch of a misconfigured registry, live and on file', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'bad'), {
      realm: 'http://auth.elsewhere.test/token',
      service: 'other-registry',
      issuer: 'tollgate',
      keys: [{ ...stale, status: 'active' }],
    });
    const registry = await startRegistry({ authToken: token28(files.auth28Yaml), logLevel: 'info' });
    registries.push(registry);
    const findings = await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: files.paths.auth28, registryUrl: registry.url });
    expect(errors(findings).sort()).toEqual(['active_key_untrusted', 'realm_mismatch', 'realm_mismatch', 'service_mismatch', 'service_mismatch']);
    const untrusted = findings.find((f) => f.id === 'active_key_untrusted')!;
    // What the registry really logs: for kid-only tokens (the default), 2.8's lookup by libtrust kid ...
    expect(untrusted.message).toContain(`token signed by untrusted key with ID: \"${active.kid}\"`);
    // ... and for x5c tokens the chain verification of 2.8.2 and 3.x, never "token signed by untrusted key".
    const x5c = (await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: files.paths.auth28, keyHint: 'x5c' })).find((f) => f.id === 'active_key_untrusted')!;
    expect(x5c.message).toContain('unable to verify certificate chain: x509: certificate signed by unknown authority');
    expect(x5c.message).toContain('failed to verify token: x509: certificate signed by unknown authority');
    expect(x5c.message).not.toContain('token signed by untrusted key');
    expect(untrusted.message).toContain(active.kid);
    expect(untrusted.fix).toMatch(/registry-config.*restart the registry/);
    const service = findings.find((f) => f.id === 'service_mismatch' && f.message.includes('running registry'))!;
    expect(service.message).toContain('"other-registry"');
    expect(service.message).toContain('"tollgate-registry"');
    expect(service.fix).toContain('auth.token.service: tollgate-registry');
  });

  it('checks the registry 3.x signing algorithms; a JWKS without the kid matters only for kid-only tokens', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'v3'), { ...registryTokenSettings(t.config), keys: await t.deps.store.listSigningKeys() });
    writeFileSync(files.paths.jwks, JSON.stringify({ keys: [{ kid: stale.kid }] }));
    const auth3 = join(t.dir, 'v3', 'auth-3-edited.yml');
    writeFileSync(auth3, files.auth3Yaml.replace(/signingalgorithms:[\s\S]*$/, 'signingalgorithms:\n      - RS256\n'));
    const keys = await t.deps.store.listSigningKeys();
    // Tollgate's tokens carry x5c: registry 3.x verifies them against the bundle and never reads the JWKS.
    const x5c = await runDoctor({ config: t.config, keys, registryConfigFile: auth3, keyHint: 'x5c' });
    expect(errors(x5c)).toEqual(['signing_algorithm_refused']);
    expect(x5c.find((f) => f.id === 'jwks_not_consulted')).toMatchObject({ severity: 'ok' });
    expect(x5c.map((f) => f.id)).not.toContain('jwks_kid_missing');
    // Tokens with a kid only (the default): 3.x finds the key only in the JWKS, 2.8 in the bundle: a warning.
    const kidOnly = await runDoctor({ config: t.config, keys, registryConfigFile: auth3 });
    expect(errors(kidOnly)).toEqual(['signing_algorithm_refused']);
    expect(kidOnly.find((f) => f.id === 'jwks_kid_missing')).toMatchObject({ severity: 'warning' });
    expect(kidOnly.find((f) => f.id === 'jwks_kid_missing')!.message).toContain(`token signed by untrusted key with ID: \"${active.kid}\"`);
  });

  it('refuses a 3.x configuration with a JWKS but no root bundle: x5c tokens are verified against the bundle only', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'jwks-only'), { ...registryTokenSettings(t.config), keys: await t.deps.store.listSigningKeys() });
    const jwksOnly = join(t.dir, 'jwks-only', 'auth-3-jwks-only.yml');
    writeFileSync(jwksOnly, files.auth3Yaml.replace(/\n\s*rootcertbundle: .*/, ''));
    const keys = await t.deps.store.listSigningKeys();
    const x5c = await runDoctor({ config: t.config, keys, registryConfigFile: jwksOnly, keyHint: 'x5c' });
    expect(errors(x5c)).toEqual(['rootcertbundle_missing']);
    expect(x5c.find((f) => f.id === 'rootcertbundle_missing')!.message).toContain('failed to verify token: x509: certificate signed by unknown authority');
    const kidOnly = await runDoctor({ config: t.config, keys, registryConfigFile: jwksOnly });
    expect(errors(kidOnly)).toEqual([]);
    expect(kidOnly.find((f) => f.id === 'rootcertbundle_missing')).toMatchObject({ severity: 'warning' });
  });

  it("explains the refusals in the registry's own log", async () => {
    const files = await writeRegistryConfig(join(t.dir, 'log'), { ...registryTokenSettings(t.config), keys: [{ ...stale, status: 'active' }] });
    const registry = await startRegistry({ authToken: token28(files.auth28Yaml), logLevel: 'info' });
    registries.push(registry);
    // A real token from the realm, signed by the active key the registry does not know.
    const creds = await t.deviceToken(await t.device(await t.factory('logged')));
    const answer = await fetch(`http://127.0.0.1:${authsvc.port}/token?service=tollgate-registry&scope=repository:logged/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}` },
    });
    const { token } = (await answer.json()) as { token: string };
    expect((await fetch(`${registry.url}/v2/logged/app/manifests/latest`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const logFile = join(t.dir, 'registry.log');
    writeFileSync(logFile, registry.output());
    const findings = await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: files.paths.auth28, registryLogFile: logFile });
    // The realm's tokens name their key by kid (the default): registry 2.8 looks it up in its bundle.
    const unknownKid = findings.find((f) => f.id === 'log_kid_untrusted')!;
    expect(unknownKid.severity).toBe('error');
    expect(unknownKid.message).toMatch(new RegExp(`says "token signed by untrusted key with ID: "${active.kid}"" \\(1 time, last at \\d{4}-`));
    expect(unknownKid.fix).toMatch(/registry-config.*restart the registry/);
    expect(findings.map((f) => f.id)).not.toContain('log_invalid_token');
  });

  it('says how the registry finds the key the tokens name (authsvc.tokenKeyHint)', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'hint'), { ...registryTokenSettings(t.config), keys: await t.deps.store.listSigningKeys() });
    const keys = await t.deps.store.listSigningKeys();
    const hintOf = (findings: readonly Finding[]) => findings.find((f) => f.id.startsWith('key_hint'));
    // kid (the default): a section without jwks serves registry 2.8 only.
    const kid28 = hintOf(await runDoctor({ config: t.config, keys, registryConfigFile: files.paths.auth28 }));
    expect(kid28).toMatchObject({ id: 'key_hint_jwks_missing', severity: 'warning' });
    expect(kid28?.message).toContain('registry 3.x only through auth.token.jwks');
    expect(hintOf(await runDoctor({ config: t.config, keys, registryConfigFile: files.paths.auth3 }))).toMatchObject({ id: 'key_hint', severity: 'ok' });
    // x5c: both versions verify the chain against the bundle.
    const x5c = { ...t.config, authsvc: { ...t.config.authsvc, tokenKeyHint: 'x5c' as const } };
    expect(hintOf(await runDoctor({ config: x5c, keys, registryConfigFile: files.paths.auth28 }))).toMatchObject({ id: 'key_hint', severity: 'ok' });
  });

  it('says what is wrong with the registry configuration file itself', async () => {
    const none = join(t.dir, 'no-auth.yml');
    writeFileSync(none, 'version: 0.1\nstorage: {}\n');
    const findings = await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: none });
    expect(errors(findings)).toEqual(['registry_auth_token_missing']);
    const missing = await runDoctor({ config: t.config, keys: await t.deps.store.listSigningKeys(), registryConfigFile: join(t.dir, 'nope.yml') });
    expect(errors(missing)).toEqual(['registry_config_unreadable']);
  });

  it('reports a realm that is down and exits 1 from the command line', async () => {
    const files = await writeRegistryConfig(join(t.dir, 'cli'), { ...registryTokenSettings(t.config), keys: await t.deps.store.listSigningKeys() });
    await authsvc.close();
    // Not spawnSync: the gateway the doctor probes runs in this process and must keep answering.
    const r = await runCli(['doctor', '--config', join(t.dir, 'tollgate.yml'), '--registry-config', files.paths.auth28]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/ok {3}gateway: the gateway answers/);
    expect(r.stdout).toMatch(/FAIL realm_unreachable: the realm does not answer/);
    expect(r.stdout).toMatch(/fix: start it \(tollgate serve authsvc\)/);
    expect(r.stdout).toMatch(/ok {3}active_key_trusted/);
  });
});
