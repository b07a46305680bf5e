/**
 * Configuration of the realm's other clients: people and machines that are not enrolled devices.
 * Each section turns one authenticator on; an absent section means that kind of credential is
 * refused. Nothing here grants anything by itself: every account principal is authorized by the
 * ordered ACL (`authsvc.acl`), deny by default.
 */
import { z } from 'zod';

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL');

/**
 * z.record, except that a key named `__proto__` is refused with the key schema's own message (or as
 * reserved). zod drops that key silently, so a user, a label or a label requirement of that name
 * would vanish from the configuration without a word: a dropped label requirement widens a rule.
 */
function record<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V) {
  return z.preprocess((raw, ctx) => {
    if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, '__proto__')) {
      const checked = key.safeParse('__proto__');
      const message = checked.success ? 'the name __proto__ is reserved' : (checked.error.issues[0]?.message ?? 'invalid name');
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message, input: raw });
    }
    return raw;
  }, z.record(key, value));
}

/** A label name: what `labels`, `${labels:<name>}` and hook answers may use. */
export const labelNameSchema = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'label names are letters, digits, "_", "." and "-"');

/** docker_auth-style labels: a name and one or more values. */
export const labelsSchema = record(labelNameSchema, z.array(z.string().min(1).max(255)).max(64));

// ---- static users ----------------------------------------------------------------------------

export const staticUserSchema = z
  .object({
    /** A bcrypt (`$2a$`/`$2b$`/`$2y$`) or argon2 (`$argon2id$`...) hash; `tollgate user hash` makes one. */
    password: z
      .string()
      .regex(/^(\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(id|i|d)\$.+)$/, 'must be a bcrypt or argon2 hash, never a clear-text password'),
    labels: labelsSchema.default({}),
  })
  .strict();

export const usersSchema = record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/, 'user names are 1-128 letters, digits and "._@+-"'), staticUserSchema).default({});

// ---- ACL -------------------------------------------------------------------------------------

/**
 * A pattern: a glob (`*` stays inside one path segment, `**` crosses any number of them, `?` is one
 * character) or, between slashes, a regular expression. Placeholders `${account}` and
 * `${labels:<name>}` are expanded before matching.
 */
const pattern = z.string().min(1).max(512);

export const aclRuleSchema = z
  .object({
    /** Free text shown in audit details and `config check`. */
    comment: z.string().max(512).optional(),
    match: z
      .object({
        account: pattern.optional(),
        /** Which authenticator vouched for the account. */
        origin: z.enum(['user', 'oidc', 'aws', 'hook']).optional(),
        type: z.enum(['repository', 'registry']).optional(),
        name: pattern.optional(),
        /** Every named label must have at least one value matching its pattern. */
        labels: record(z.string().min(1).max(64), pattern).optional(),
      })
      .strict()
      .prefault({}),
    /** What the matching rule allows; an empty list denies explicitly (and stops the search). */
    actions: z.array(z.enum(['pull', 'push', 'delete', '*'])).max(4),
  })
  .strict();

export const aclSchema = z.array(aclRuleSchema).max(10_000).default([]);

// ---- OIDC ------------------------------------------------------------------------------------

/** Keys fetched over plain HTTP could be swapped on the way: only a provider on this machine may use it. */
const oidcIssuer = httpUrl.refine((u) => {
  const { protocol, hostname } = new URL(u);
  return protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}, 'must be an https:// URL (plain http:// only on a loopback address)');

export const oidcSchema = z
  .object({
    /** The provider's issuer URL, exactly as its ID tokens' `iss` spell it; its discovery document names the JWKS. */
    issuer: oidcIssuer,
    /** Accepted `aud` values: the client id(s) `tollgate login` uses. */
    audience: z.array(z.string().min(1).max(255)).min(1),
    /** The claim that names the account (the Basic username must equal it). */
    accountClaim: z.string().min(1).max(64).default('email'),
    /** Claims copied into labels (a claim holding a list gives one value per element). */
    labelClaims: z.array(z.string().min(1).max(64)).max(32).default(['email', 'groups']),
    /** Refuse tokens whose `email_verified` is not true when the account claim is `email`. */
    requireVerifiedEmail: z.boolean().default(true),
    /** Leeway for `exp`/`nbf`/`iat`, in seconds. */
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    /** Client settings `tollgate login` defaults to. */
    clientId: z.string().min(1).max(255).optional(),
  })
  .strict();

// ---- AWS instance identity -------------------------------------------------------------------

export const awsIdentitySchema = z
  .object({
    /** Region -> file holding AWS's public certificate for that region's PKCS#7 signatures. */
    certificates: record(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1'), z.string().min(1)),
    /**
     * A document whose signed signingTime is older than this is refused as stale. AWS signs the
     * document when the instance launches or starts, so this is also how long after that a VM can use it.
     */
    maxAgeSeconds: z.number().int().min(30).max(86_400).default(300),
    /** Which accounts (and optionally which instances) may use it, and the factory label they get. */
    mappings: z
      .array(
        z
          .object({
            accountId: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
            regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1')).min(1).optional(),
            instanceIds: z.array(z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an EC2 instance id such as i-0123456789abcdef0')).min(1).optional(),
            factory: z.string().min(1).max(64),
            labels: labelsSchema.default({}),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

// ---- extension hooks -------------------------------------------------------------------------

const hookTarget = z
  .object({
    /**
     * An executable and its arguments, run without a shell: JSON on stdin, the decision in its exit
     * code. The executable is named by an absolute path, so neither PATH nor the working directory
     * decides which program sees passwords.
     */
    command: z
      .array(z.string().min(1).max(4096))
      .min(1)
      .max(64)
      .refine((c) => c[0] !== undefined && c[0].startsWith('/'), 'the executable (first element) must be an absolute path')
      .optional(),
    /** A webhook: the same JSON POSTed, the decision in the status. */
    url: httpUrl.optional(),
    /**
     * Past this, the hook is killed (its whole process group) or the request aborted, and the
     * answer is no. It bounds the whole call, including any wait for a free slot.
     */
    timeoutMs: z.number().int().min(10).max(30_000).default(2_000),
    /** Hook processes (or webhook requests) at once; more requests wait their turn within timeoutMs. */
    maxConcurrent: z.number().int().min(1).max(64).default(4),
  })
  .strict()
  .refine((h) => (h.command === undefined) !== (h.url === undefined), 'exactly one of command and url must be set');

export const hooksSchema = z
  .object({
    authentication: hookTarget.optional(),
    authorization: hookTarget.optional(),
  })
  .strict()
  .prefault({});

export type StaticUserConfig = z.infer<typeof staticUserSchema>;
export type AclRuleConfig = z.infer<typeof aclRuleSchema>;
export type OidcConfig = z.infer<typeof oidcSchema>;
export type AwsIdentityConfig = z.infer<typeof awsIdentitySchema>;
export type HookTargetConfig = z.infer<typeof hookTarget>;
export type HooksConfig = z.infer<typeof hooksSchema>;
