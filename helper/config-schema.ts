import { z } from 'zod';
import { gatewayProblem, KEYS, type RawDeviceConfig } from './config.js';
import { registryHost } from './protocol.js';

/**
 * The device config's schema, and the precise refusals it gives. helper/config.ts takes a plainly
 * valid config without it (plainDeviceConfig) and loads this module only for the others.
 */

const requiredString = (what: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : `must be a string (${what})`) })
    .trim()
    .min(1, { error: `must not be empty (${what})` });

export const deviceConfigSchema = z.strictObject(
  {
    gateway: requiredString('the gateway URL, https://host[:port]').superRefine((value, ctx) => {
      const problem = gatewayProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    certificate: requiredString('path of the device certificate PEM'),
    privateKey: requiredString('path of the device private key PEM'),
    caBundle: requiredString('path of the PEM bundle of CAs that issued the gateway certificate'),
    registries: z
      .array(
        z.string({ error: 'must be a string (host[:port])' }).superRefine((value, ctx) => {
          if (registryHost(value) === undefined) ctx.addIssue({ code: 'custom', message: `"${value}" is not a registry host[:port]` });
        }),
        { error: (issue) => (issue.input === undefined ? 'is required' : 'must be an array of registry host[:port] strings') },
      )
      .min(1, { error: 'must list at least one registry host[:port]' }),
  },
  { error: (issue) => (issue.code === 'invalid_type' ? 'must be a JSON object' : undefined) },
);

function issueText(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys} (expected ${KEYS.join(', ')})`;
  }
  let where = '';
  for (const part of issue.path) {
    where += typeof part === 'number' ? `[${part}]` : `${where === '' ? '' : '.'}${String(part)}`;
  }
  return where === '' ? issue.message : `${where}: ${issue.message}`;
}

/** The config's fields, or `fail` called with every problem found. */
export function checkDeviceConfig(json: unknown, fail: (problems: string) => never): RawDeviceConfig {
  const parsed = deviceConfigSchema.safeParse(json);
  if (!parsed.success) return fail(parsed.error.issues.map(issueText).join('; '));
  return parsed.data;
}
