import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { aclSchema, awsIdentitySchema, hooksSchema, oidcSchema, usersSchema } from './config-accounts.js';
import { z } from 'zod';
import { invalidInput } from './errors.js';
import { KEY_ALGORITHMS } from './pki/key-types.js';

/**
 * Tollgate's configuration: one file (YAML or JSON) plus environment overrides, validated once at
 * start-up. Every key has a safe default, so no file at all is a valid configuration for a
 * development setup on loopback.
 *
 * Environment overrides name the key path in upper snake case under TOLLGATE_:
 * `gateway.listen.port` is TOLLGATE_GATEWAY_LISTEN_PORT, `authsvc.tokenTtlSeconds` is
 * TOLLGATE_AUTHSVC_TOKEN_TTL_SECONDS.
 */

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1).max(255);
const listen = (defaultPort: number) =>
  z.object({ host: host.default('127.0.0.1'), port: port.default(defaultPort) }).strict().prefault({});

/** A token bucket: `burst` requests at once, refilled at `perSecond`. */
const bucket = (burst: number, perSecond: number) =>
  z
    .object({
      burst: z.number().int().min(1).max(1_000_000).default(burst),
      perSecond: z.number().min(0.001).max(1_000_000).default(perSecond),
    })
    .strict()
    .prefault({});

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL');

/** The scopes a console role may grant: the admin API's (containers:* belong to registry clients). */
const consoleScopes = z.enum(['devices:read', 'devices:write', 'devices:test', 'tokens:write', 'containers:read', 'containers:write', 'containers:delete']);

const consoleOidcSchema = z
  .object({
    /** The client id registered for the console (default: authsvc.oidc.clientId). */
    clientId: z.string().min(1).max(255).optional(),
    /** Ordered: the first rule whose claim holds its value decides the person's factory and scopes. */
    roles: z
      .array(
        z
          .object({
            /** An ID token claim the realm reads as a label (authsvc.oidc.labelClaims), e.g. groups. */
            claim: z.string().min(1).max(64).default('groups'),
            value: z.string().min(1).max(255),
            factory: z.string().min(1).max(64),
            scopes: z.array(consoleScopes).min(1),
          })
          .strict(),
      )
      .max(1000)
      .default([]),
  })
  .strict();

export type ConsoleRole = z.infer<typeof consoleOidcSchema>['roles'][number];
const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** Which database holds the state, and how private keys are kept there. */
const storeSchema = z
  .object({
    /** `sqlite` (embedded, one host; the default) or `postgres` (several instances). */
    type: z.enum(['sqlite', 'postgres']).default('sqlite'),
    /** PostgreSQL: `postgres://user@host:5432/db` (a password is better in PGPASSWORD). SQLite: a file path, else dataDir/tollgate.db. */
    url: z.string().min(1).max(2048).optional(),
    /**
     * A file holding the 256-bit key-encryption key (base64 or hex): private keys then live in the
     * database, sealed with it, instead of files under pkiDir. Required on PostgreSQL.
     */
    keyEncryptionKeyFile: z.string().min(1).optional(),
    /** Earlier key-encryption keys, still accepted for reading while `tollgate store rotate-kek` re-seals. */
    previousKeyEncryptionKeyFiles: z.array(z.string().min(1)).max(8).default([]),
    /** PostgreSQL connections per process. */
    poolSize: z.number().int().min(1).max(200).default(10),
    sqlite: z
      .object({
        /**
         * SQLite's `synchronous` in WAL mode. NORMAL: a commit survives the process crashing, but
         * the last commits before a power loss or an operating-system crash may be lost (the file
         * stays consistent). FULL: the write-ahead log is flushed to disk (fsync) at every commit,
         * so a committed token and its audit record survive a power loss too, at the cost of one
         * fsync per commit.
         */
        synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.type !== 'postgres') return;
    if (s.url === undefined || !POSTGRES_URL.test(s.url)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'store.type postgres needs store.url, e.g. postgres://tollgate@db.example.com/tollgate' });
    }
    if (s.keyEncryptionKeyFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['keyEncryptionKeyFile'],
        message: 'store.type postgres keeps private keys in the database and needs a key-encryption key file to seal them',
      });
    }
  })
  .prefault({});

export const configSchema = z
  .object({
    /** Where the SQLite database lives. */
    dataDir: z.string().min(1).default('data'),
    store: storeSchema,
    /** Where generated and uploaded key material lives (private keys are files with mode 0600). */
    pkiDir: z.string().min(1).default('certs'),
    /**
     * Development mode (`tollgate up` turns it on for the services it starts): a missing
     * gateway.tls is generated under pkiDir/tls instead of being a start-up error.
     */
    development: z.boolean().default(false),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
    gateway: z
      .object({
        listen: listen(8443),
        /** The URL devices use to reach the gateway; goes into device config files. */
        publicUrl: httpUrl.optional(),
        /** Lifetime of a token minted by /hub-creds/. */
        tokenTtlSeconds: z.number().int().min(60).max(86_400).default(3600),
        /**
         * The gateway's server certificate and key (PEM files), and the CA bundle devices trust it by
         * (default: the certificate file). Required, except in development mode.
         */
        tls: z
          .object({ certFile: z.string().min(1).optional(), keyFile: z.string().min(1).optional(), caFile: z.string().min(1).optional() })
          .strict()
          .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), 'certFile and keyFile go together: set both or neither')
          .prefault({}),
        /** Extra host names for the generated development server certificate. */
        serverNames: z.array(z.string().min(1).max(253)).max(32).default([]),
        /**
         * How EST re-enrollment answers: `rfc7030` (200, application/pkcs7-mime; smime-type=certs-only)
         * or `foundries` (201, exactly application/pkcs7-mime), which fioconfig mp-96 and older require.
         */
        estResponse: z.enum(['rfc7030', 'foundries']).default('rfc7030'),
        /** Registries (host[:port]) devices pull from; written into the sota.toml of a registration. */
        registries: z.array(z.string().regex(/^[A-Za-z0-9.:\[\]_-]{1,261}$/, 'must be a registry host[:port]')).max(32).default([]),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        listen: listen(8442),
        /**
         * The admin API and console as browsers and clients reach them, e.g. behind a TLS proxy
         * https://tollgate-admin.example.com. An https URL makes console cookies Secure.
         */
        publicUrl: httpUrl.optional(),
        console: z
          .object({
            /** A console session ends after this many minutes without a request. */
            idleMinutes: z.number().int().min(1).max(24 * 60).default(30),
            /** Sign-in through authsvc.oidc's provider: claims map to one factory and its scopes. */
            oidc: consoleOidcSchema.optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    authsvc: z
      .object({
        listen: listen(5001),
        realmPath: z
          .string()
          .regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must be an absolute URL path such as /token')
          .default('/token'),
        /** Public URL of the realm, as the registry's auth.token.realm names it. */
        publicUrl: httpUrl.optional(),
        /** The registry's auth.token.service: becomes the JWT `aud`. */
        service: z.string().min(1).max(255).default('tollgate-registry'),
        /** The registry's auth.token.issuer: becomes the JWT `iss`. */
        issuer: z.string().min(1).max(255).default('tollgate'),
        /**
         * How a registry JWT names its signing key: `kid` (the libtrust key id: registry 2.8 finds it in
         * the root bundle, 3.x in the jwks file) keeps the token answer near 600 bytes, within
         * aktualizr-lite's 1024-byte cap; `x5c` also carries the signing certificate (about 2.8 KB).
         */
        tokenKeyHint: z.enum(['kid', 'x5c']).default('kid'),
        /** Lifetime of a registry JWT; long enough for a big push. */
        tokenTtlSeconds: z.number().int().min(60).max(86_400).default(900),
        /** Lifetime of a refresh (offline) token. */
        refreshTokenTtlSeconds: z.number().int().min(300).max(90 * 86_400).default(30 * 86_400),
        /** People and machines with a password (bcrypt or argon2 hash), docker_auth style. */
        users: usersSchema,
        /** Ordered rules for every account that is not a device or API token; first match wins. */
        acl: aclSchema,
        /** OpenID Connect single sign-on for people. */
        oidc: oidcSchema.optional(),
        /** AWS EC2 instance identity documents for virtual machines. */
        awsIdentity: awsIdentitySchema.optional(),
        /** A site's own authentication and authorization, as an executable or a webhook. */
        hooks: hooksSchema,
      })
      .strict()
      .prefault({}),
    pki: z
      .object({
        /** Lifetime of device certificates signed by an online CA, unless the request asks for less. */
        deviceCertDays: z.number().int().min(1).max(3650).default(365),
        /** Cap on the lifetime of test device certificates issued for CI. */
        testCertMaxHours: z.number().int().min(1).max(24 * 30).default(24),
        /** Key types a device certificate may certify, unless a factory's settings narrow them. */
        allowedKeyTypes: z
          .array(z.enum(KEY_ALGORITHMS))
          .min(1)
          .default([...KEY_ALGORITHMS]),
      })
      .strict()
      .prefault({}),
    /**
     * Request limits of the gateway's /hub-creds/ and the realm. Defaults let a device pull dozens
     * of images at once (each pull is one realm request) while stopping a loop or a guessing client.
     */
    limits: z
      .object({
        enabled: z.boolean().default(true),
        /** Per device (client-certificate fingerprint), or at the realm per subject its credentials proved (never a name merely claimed). */
        perDevice: bucket(60, 10),
        /** Per source address; several devices may share one address behind NAT. */
        perSource: bucket(600, 100),
        /** Back-off on failed credentials, per source address. */
        failures: z
          .object({
            /** Failures tolerated within windowSeconds before the address is blocked. */
            threshold: z.number().int().min(1).max(10_000).default(20),
            windowSeconds: z.number().int().min(1).max(86_400).default(60),
            /** The first block; each further failure while over the threshold doubles it. */
            blockSeconds: z.number().int().min(1).max(3600).default(1),
            maxBlockSeconds: z.number().int().min(1).max(86_400).default(300),
          })
          .strict()
          .refine((f) => f.blockSeconds <= f.maxBlockSeconds, 'blockSeconds must not exceed maxBlockSeconds')
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /**
     * Prometheus metrics, on a listener of their own in each service process (never on the device
     * or realm port). The port defaults per service: 9464 for the gateway process (gateway and admin
     * API), 9465 for the realm.
     */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        listen: z.object({ host: host.default('127.0.0.1'), port: port.optional() }).strict().prefault({}),
        /** Device certificates expiring within this many days are counted per factory. */
        expiringWithinDays: z.number().int().min(1).max(3650).default(30),
      })
      .strict()
      .prefault({}),
    maintenance: z
      .object({
        /** How often expired tokens are deleted (one instance does it, whichever runs); 0 turns the purge off. */
        purgeIntervalSeconds: z.number().int().min(0).max(86_400).default(300),
        /**
         * Days of audit history to keep; older records are deleted by the same scheduled purge.
         * 0 keeps the audit trail forever (it then grows by a record per issued credential).
         */
        auditRetentionDays: z.number().int().min(0).max(36_500).default(90),
        /** Before retention deletes audit records, append them to this file (NDJSON); unset: they are gone. */
        auditArchiveFile: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

export interface LoadedConfig extends Config {
  /** The file it came from, if any. */
  source: string | null;
  /** Absolute path of the SQLite database (store.type sqlite). */
  databasePath: string;
}

/** Formats zod issues as `key.path: what was wrong (expected ...)`, one per line. */
function describeIssues(error: z.ZodError, origin: string): string {
  return error.issues
    .map((i) => {
      const key = i.path.length > 0 ? i.path.join('.') : '(root)';
      return `${origin}: ${key}: ${i.message}`;
    })
    .join('\n');
}

function envName(path: readonly string[]): string {
  return (
    'TOLLGATE_' +
    path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')
  );
}

/** Every leaf key path of the schema, so that env overrides are derived from it, never listed by hand. */
function leafPaths(schema: z.ZodType, prefix: string[] = []): { path: string[]; leaf: z.ZodType }[] {
  let s: z.ZodType = schema;
  // Unwrap defaults/optionals/prefaults to reach the object or the leaf.
  for (;;) {
    const def = (s as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'prefault') && def.innerType) {
      s = def.innerType;
      continue;
    }
    break;
  }
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [{ path: prefix, leaf: s }];
}

function coerceEnv(raw: string, leaf: z.ZodType): unknown {
  if (leaf instanceof z.ZodNumber) return raw.trim() === '' ? raw : Number(raw);
  if (leaf instanceof z.ZodBoolean) return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (leaf instanceof z.ZodArray) return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return raw;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export const MAX_CONFIG_BYTES = 256 * 1024;

export interface LoadConfigOptions {
  /** Explicit file; else TOLLGATE_CONFIG; else no file. */
  file?: string | null;
  env?: NodeJS.ProcessEnv;
  /** Relative dataDir/pkiDir resolve against this (default: the config file's directory, else cwd). */
  cwd?: string;
}

/**
 * Reads, merges and validates the configuration. Throws an invalid_input TollgateError whose message
 * lists every problem as `origin: key: what is wrong`.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? (env.TOLLGATE_CONFIG || null);
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw invalidInput('config_unreadable', `${file}: cannot read the configuration file (${(e as Error).message})`);
    }
    if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
      throw invalidInput('config_too_large', `${file}: larger than ${MAX_CONFIG_BYTES} bytes`);
    }
    let parsed: unknown;
    try {
      parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 10 });
    } catch (e) {
      throw invalidInput('config_syntax', `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
    }
    if (parsed === null || parsed === undefined) parsed = {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw invalidInput('config_syntax', `${file}: the top level must be a mapping of keys to values`);
    }
    raw = parsed as Record<string, unknown>;
  }

  const fromFile = configSchema.safeParse(raw);
  if (!fromFile.success) {
    throw invalidInput('config_invalid', describeIssues(fromFile.error, file ?? 'configuration'));
  }

  // Apply environment overrides on top of the file, then validate again, naming the variable.
  const merged = structuredClone(raw);
  const overridden: string[] = [];
  for (const { path, leaf } of leafPaths(configSchema)) {
    const name = envName(path);
    const value = env[name];
    if (value === undefined) continue;
    setPath(merged, path, coerceEnv(value, leaf));
    overridden.push(name);
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const name = envName(i.path.map(String));
      const origin = overridden.includes(name) ? `environment ${name}` : (file ?? 'configuration');
      return `${origin}: ${i.path.join('.')}: ${i.message}`;
    });
    throw invalidInput('config_invalid', lines.join('\n'));
  }

  const base = options.cwd ?? (file ? dirname(resolve(file)) : process.cwd());
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const config = result.data;
  const sqliteUrl = config.store.type === 'sqlite' && config.store.url !== undefined ? config.store.url.replace(/^sqlite:(\/\/)?/, '') : undefined;
  return {
    ...config,
    dataDir: abs(config.dataDir),
    pkiDir: abs(config.pkiDir),
    maintenance: {
      ...config.maintenance,
      ...(config.maintenance.auditArchiveFile !== undefined ? { auditArchiveFile: abs(config.maintenance.auditArchiveFile) } : {}),
    },
    store: {
      ...config.store,
      ...(config.store.keyEncryptionKeyFile !== undefined ? { keyEncryptionKeyFile: abs(config.store.keyEncryptionKeyFile) } : {}),
      previousKeyEncryptionKeyFiles: config.store.previousKeyEncryptionKeyFiles.map(abs),
    },
    source: file,
    databasePath: sqliteUrl !== undefined ? abs(sqliteUrl) : resolve(abs(config.dataDir), 'tollgate.db'),
  };
}

/** The URL devices use for the gateway. */
export function gatewayUrl(config: Config): string {
  return config.gateway.publicUrl ?? `https://${urlHost(config.gateway.listen.host)}:${config.gateway.listen.port}`;
}

/** The realm URL a registry's auth.token.realm must name. */
export function realmUrl(config: Config): string {
  return (
    config.authsvc.publicUrl ??
    `http://${urlHost(config.authsvc.listen.host)}:${config.authsvc.listen.port}${config.authsvc.realmPath}`
  );
}

/** Where a service process serves its metrics when `metrics.listen.port` is not set. */
export const DEFAULT_METRICS_PORTS = { gateway: 9464, authsvc: 9465 } as const;

export function metricsListen(config: Config, service: keyof typeof DEFAULT_METRICS_PORTS): { host: string; port: number } {
  return { host: config.metrics.listen.host, port: config.metrics.listen.port ?? DEFAULT_METRICS_PORTS[service] };
}

export function adminUrl(config: Config): string {
  return (config.admin.publicUrl ?? `http://${urlHost(config.admin.listen.host)}:${config.admin.listen.port}`).replace(/\/+$/, '');
}

function urlHost(h: string): string {
  if (h === '0.0.0.0' || h === '::') return '127.0.0.1';
  return h.includes(':') ? `[${h}]` : h;
}

/** The environment variable that overrides a key path; for messages and docs. */
export function environmentVariableFor(path: readonly string[]): string {
  return envName(path);
}
