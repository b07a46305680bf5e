import { z } from 'zod';

/**
 * Request shapes of the admin API: the route table validates every request with these, and the
 * OpenAPI document describes them from the same schemas. Objects are strict, so a misspelt key is
 * refused by name instead of silently ignored (a typo in `days` must not enroll a device for the
 * default lifetime). Value rules (lifetimes, names, scopes) stay in the authority, which the CLI's
 * local mode shares.
 */

const optionalInt = z.number().int().optional();
const optionalText = z.string().nullable().optional();

export const onlineCaBody = z
  .object({ kind: z.literal('online'), commonName: optionalText, days: optionalInt.describe('lifetime in days (default 3650)') })
  .strict();
export const externalCaBody = z
  .object({
    kind: z.literal('external'),
    certificate: z.string().describe('PEM CA certificate'),
    verificationCertificate: z.string().optional().describe('PEM certificate whose CN is a registration code, signed by the CA key'),
  })
  .strict();
export const caBody = z.discriminatedUnion('kind', [onlineCaBody, externalCaBody]);

export const settingsBody = z
  .object({
    jit: z.enum(['off', 'pending', 'active']).optional(),
    certMaxDays: z.number().int().nullable().optional().describe('null restores the operator default'),
    testCertMaxHours: z.number().int().nullable().optional(),
    keyTypes: z.array(z.string()).nullable().optional(),
  })
  .strict();

export const stateChangeBody = z.object({ reason: optionalText.describe('kept in the audit trail') }).strict();

export const enrollBody = z
  .object({
    csr: z.string().optional().describe('PEM PKCS#10 request, signed by the online CA'),
    certificate: z.string().optional().describe('PEM device certificate a CA of the factory issued'),
    name: optionalText,
    caId: z.string().optional(),
    days: optionalInt,
    test: z.boolean().optional().describe('a short-lived test device (devices:test suffices)'),
    hours: optionalInt,
    minutes: optionalInt,
  })
  .strict();

export const bulkEnrollBody = z
  .object({
    rows: z
      .array(
        z
          .object({
            csr: z.string().optional(),
            certificate: z.string().optional(),
            name: optionalText,
            days: optionalInt,
          })
          .strict(),
      )
      .describe('1 to 500 rows; all are enrolled or none'),
  })
  .strict();

export const createTokenBody = z
  .object({ scopes: z.array(z.string()), description: optionalText, days: optionalInt.describe('lifetime in days (default: no expiry)') })
  .strict();

export const createFactoryBody = z.object({ name: z.string().describe('lower-case letters, digits and dashes') }).strict();
export const addKeyBody = z
  .object({
    alg: z.string().optional().describe('ec-p256 (default), ec-p384, rsa-2048, rsa-3072, rsa-4096'),
    days: optionalInt,
    activate: z.boolean().optional().describe('sign new tokens with it at once'),
  })
  .strict();
export const operatorTokenBody = z.object({ description: optionalText, days: optionalInt.describe('1 to 365 (default 90)') }).strict();

export const signInBody = z
  .object({
    token: z.string().max(512).optional().describe('an admin API token (tga_...)'),
    code: z.string().max(128).optional().describe('a one-time code from `tollgate console`'),
  })
  .strict();

const limit = z.string().describe('1 to 1000 (default 100)').optional();
const cursor = z.string().describe('`next` of the previous page').optional();

export const listDevicesQuery = z
  .object({
    state: z.enum(['active', 'pending', 'disabled', 'revoked']).optional(),
    test: z.enum(['true', 'false']).optional().describe('only test devices, or only enrolled ones'),
    search: z.string().optional().describe('a UUID prefix or part of the name'),
    limit,
    cursor,
  })
  .strict();

const auditFilters = {
  target: z.string().optional().describe('a device UUID, token id or CA id'),
  actor: z.string().optional().describe('e.g. operator, token:tok_..., oidc:alice@example.com, device:<uuid>'),
  action: z.string().optional().describe('e.g. device.revoked, token.refused'),
  outcome: z.enum(['success', 'denied']).optional(),
  from: z.string().optional().describe('RFC 3339 time: records at or after it'),
  to: z.string().optional().describe('RFC 3339 time: records before it'),
  order: z.enum(['asc', 'desc']).optional().describe('asc (oldest first, default) or desc'),
};

export const auditQuery = z.object({ ...auditFilters, limit, cursor }).strict();
export const auditExportQuery = z.object({ ...auditFilters, format: z.enum(['ndjson', 'csv']).optional().describe('default ndjson') }).strict();
export const noQuery = z.object({}).strict();
export const oidcCallbackQuery = z.object({ code: z.string().optional(), state: z.string().optional(), error: z.string().optional(), error_description: z.string().optional(), iss: z.string().optional() });
