import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createAdminApp } from '../../admin/app.js';
import { AdminService } from '../../admin/service.js';
import { createOnlineCa } from '../../shared/authority/index.js';
import { loadConfig } from '../../shared/config.js';
import { isTollgateError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { createCsr, generateKeyPair, issueCertificate, parseCertificate, parseCsr, splitPemBundle } from '../../shared/pki/index.js';
import { runHelper } from '../../helper/index.js';
import { createTestAuthority, OPERATOR, type TestAuthority } from '../support/store.js';
import { createTestPki, startFakeGateway, writeDeviceConfig, type FakeGateway } from '../unit/helper-fixture.js';

/**
 * Parsers facing untrusted input, fed generated input: each either succeeds or fails with
 * Tollgate's own error type (which the services turn into a 4xx), never with anything else.
 */

/** Runs `f`; a throw must be a TollgateError. Returns whether it succeeded. */
async function onlyTollgateErrors(f: () => unknown): Promise<boolean> {
  try {
    await f();
    return true;
  } catch (e) {
    if (!isTollgateError(e)) throw new Error(`threw ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message ?? e)}`);
    return false;
  }
}

let validCertPem: string;
let validCsrPem: string;

beforeAll(async () => {
  const pair = generateKeyPair('ec-p256');
  validCertPem = await issueCertificate({
    profile: 'root-ca',
    subject: { commonName: 'property test CA' },
    publicKey: crypto.createPublicKey(pair.publicKeyPem),
    notAfter: new Date(Date.now() + 86_400_000),
    selfSignPrivateKeyPem: pair.privateKeyPem,
  });
  validCsrPem = await createCsr({ subject: { commonName: crypto.randomUUID(), organizationalUnit: 'acme' }, ...pair });
});

/** A valid PEM with some bytes of its text, or of its DER, changed. */
function mutatedPem(pem: () => string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 127 })), { minLength: 1, maxLength: 4 }).map((edits) => {
      const chars = [...pem()];
      for (const [at, code] of edits) chars[at % chars.length] = String.fromCharCode(code);
      return chars.join('');
    }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
      const text = pem();
      const label = /-----BEGIN ([A-Z ]+)-----/.exec(text)?.[1] ?? 'CERTIFICATE';
      const der = Buffer.from(text.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
      for (const [at, byte] of edits) der[at % der.length] = byte;
      return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;
    }),
    fc.nat().map((n) => pem().slice(0, n % pem().length)),
  );
}

describe('PEM, certificate and CSR parsing', () => {
  it('the unmutated inputs parse (control)', async () => {
    expect(await onlyTollgateErrors(() => parseCertificate(validCertPem))).toBe(true);
    expect(await onlyTollgateErrors(() => parseCsr(validCsrPem))).toBe(true);
  });

  it('arbitrary strings and mutated certificates fail only with a TollgateError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), mutatedPem(() => validCertPem)), async (text) => {
        await onlyTollgateErrors(() => parseCertificate(text));
        await onlyTollgateErrors(() => splitPemBundle(text));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary strings and mutated CSRs fail only with a TollgateError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), mutatedPem(() => validCsrPem)), async (text) => {
        await onlyTollgateErrors(() => parseCsr(text));
      }),
      { numRuns: 300 },
    );
  });
});

describe('configuration files', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'tollgate-config-prop-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const sections = ['dataDir', 'pkiDir', 'log', 'gateway', 'admin', 'authsvc', 'pki', 'limits', 'maintenance', 'level', 'listen', 'port', 'host', '__proto__', 'constructor'];
  const key = fc.oneof(fc.constantFrom(...sections), fc.string({ maxLength: 12 }));
  const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  const { value: yamlValue } = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(key, tie('value'), { maxKeys: 4 })),
  }));

  it('loads or refuses arbitrary YAML mappings with invalid_input, never anything else', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.dictionary(key, yamlValue, { maxKeys: 6 }), fc.boolean(), (mapping, raw) => {
        const file = join(dir, `c${n++}.yml`);
        writeFileSync(file, raw ? JSON.stringify(mapping) : stringify(mapping));
        try {
          loadConfig({ file, env: {}, cwd: dir });
        } catch (e) {
          expect(isTollgateError(e) && e.kind === 'invalid_input', String(e)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses YAML that is not a mapping, or is not YAML at all, with invalid_input', () => {
    for (const text of ['- a\n- b\n', '42\n', '"x"\n', 'a: [1, 2\n', '*unknown\n', 'a: &x [*x]\n', '\0\0']) {
      const file = join(dir, 'bad.yml');
      writeFileSync(file, text);
      let kind: string | null = null;
      try {
        loadConfig({ file, env: {}, cwd: dir });
      } catch (e) {
        kind = isTollgateError(e) ? e.kind : `not a TollgateError: ${String(e)}`;
      }
      expect(kind, text).toBe('invalid_input');
    }
  });
});

describe('credential-helper stdin', () => {
  let dir: string;
  let gateway: FakeGateway;
  let configFile: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-helper-prop-'));
    const pki = await createTestPki(join(dir, 'pki'));
    gateway = await startFakeGateway(pki);
    configFile = writeDeviceConfig(pki.dir, gateway.url);
  });
  afterAll(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers any stdin with exit 0 or 1 and exactly one line, never throwing', async () => {
    let run = 0;
    const outcomes = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('get', 'store', 'erase', 'list', 'version', 'nonsense', ''),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          // The configured registry in the forms clients send, with hostile tails.
          fc.tuple(fc.constantFrom('127.0.0.1:5000', 'https://127.0.0.1:5000/v2/', 'HTTPS://127.0.0.1:5000'), fc.string({ unit: 'binary', maxLength: 8 })).map(([u, tail]) => u + tail),
          fc.constantFrom('{"ServerURL":"127.0.0.1:5000","Username":"u","Secret":"s"}', '\0\n\n', ' '.repeat(70_000)),
        ),
        async (command, stdin) => {
          // A cache of its own per run, so every run reaches the parsing and the gateway call.
          const env = { TOLLGATE_DEVICE_CONFIG: configFile, TOLLGATE_CACHE_DIR: join(dir, `cache-${run++}`) };
          const result = await runHelper(command ? [command] : [], stdin, env, { stderr: () => undefined, timeoutMs: 2_000, connectTimeoutMs: 1_000 });
          outcomes.add(result.exitCode);
          expect([0, 1]).toContain(result.exitCode);
          if (result.stdout !== '') {
            expect(result.stdout.endsWith('\n'), JSON.stringify(result.stdout)).toBe(true);
            expect(result.stdout.slice(0, -1), JSON.stringify(result.stdout)).not.toContain('\n');
          }
          if (result.exitCode === 1) expect(result.stdout.length).toBeGreaterThan(1);
        },
      ),
      { numRuns: 200 },
    );
    // Both outcomes happened: the generator reaches the success path, not only refusals.
    expect([...outcomes].sort()).toEqual([0, 1]);
  });
});

describe('admin API JSON bodies', () => {
  let t: TestAuthority;
  let app: ReturnType<typeof createAdminApp>;
  let secret: string;

  beforeAll(async () => {
    t = await createTestAuthority();
    const acme = await t.factory('acme');
    await createOnlineCa(t.deps, OPERATOR, acme);
    app = createAdminApp({
      service: new AdminService(t.deps),
      log: createLogger('admin-prop', 'silent'),
      enrollment: { gatewayCa: validCertPem, gateway: 'https://gateway.test:8443' },
    });
    secret = (await t.apiToken(acme, ['devices:read', 'devices:write', 'tokens:write', 'containers:read'])).secret;
  });
  afterAll(() => t?.cleanup());

  const bodyValue = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record(
      {
        csr: fc.oneof(fc.string(), fc.constant('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), fc.integer()),
        certificate: fc.string(),
        name: fc.oneof(fc.string({ unit: 'binary' }), fc.integer()),
        days: fc.oneof(fc.integer(), fc.double(), fc.string()),
        hours: fc.oneof(fc.integer(), fc.constant(-1)),
      },
      { requiredKeys: [] },
    ),
  );

  it('accepts an honest token request (control: the credentials and route work)', async () => {
    const res = await request(app).post('/v1/factories/acme/tokens').set('Authorization', `Bearer ${secret}`).send({ scopes: ['containers:read'] });
    expect(res.status, res.text).toBeLessThan(300);
    expect(res.text).toContain('containers:read');
  });

  it('answers arbitrary JSON posted as a device enrollment with a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(bodyValue, async (value) => {
        const res = await request(app)
          .post('/v1/factories/acme/devices')
          .set('Authorization', `Bearer ${secret}`)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify(value));
        expect(res.status, `${JSON.stringify(value)} -> ${res.status} ${res.text}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${JSON.stringify(value)} -> ${res.text}`).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });

  it('answers arbitrary JSON posted as a token request with a 4xx or a token within the caller\'s scopes', async () => {
    const tokenBody = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({ scopes: fc.oneof(fc.array(fc.oneof(fc.string(), fc.constantFrom('containers:read', 'catalog:read', 'devices:write', 'tokens:write'))), fc.string()), days: fc.oneof(fc.integer(), fc.double()), description: fc.string({ unit: 'binary' }) }, { requiredKeys: [] }),
    );
    await fc.assert(
      fc.asyncProperty(tokenBody, async (value) => {
        const res = await request(app).post('/v1/factories/acme/tokens').set('Authorization', `Bearer ${secret}`).set('Content-Type', 'application/json').send(JSON.stringify(value));
        expect(res.status, `${JSON.stringify(value)} -> ${res.text}`).toBeLessThan(500);
        if (res.status < 300) {
          const granted = (res.body as { scopes?: string[]; token?: { scopes?: string[] } }).scopes ?? (res.body as { token?: { scopes?: string[] } }).token?.scopes ?? [];
          expect(granted.every((s) => ['devices:read', 'devices:write', 'tokens:write', 'containers:read'].includes(s)), res.text).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});
