import type { CaState } from '../../shared/store/types.js';
import { intOption, requiredString, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { readInputFile } from '../files.js';
import { fields, table } from '../format.js';

const reasonOption = { reason: { type: 'string' as const, value: 'text', help: 'why (kept in the audit trail)' } };

function stateCommand(verb: 'disable' | 'enable' | 'revoke', state: CaState, summary: string): Command {
  return {
    name: ['ca', verb],
    args: ['factory', 'id'],
    usage: '<factory> <id> [--reason <text>]',
    summary,
    options: reasonOption,
    mode: 'any',
    async run(ctx, input) {
      const ca = await ctx.client().setCaState(input.args.factory, input.args.id, state, stringOption(input, 'reason'));
      ctx.print(ca, () => `CA ${ca.id} of factory ${input.args.factory} is now ${ca.state}`);
    },
  };
}

export const caCommands: Command[] = [
  {
    name: ['ca', 'list'],
    args: ['factory'],
    usage: '<factory>',
    summary: 'list the device CAs of a factory',
    mode: 'any',
    async run(ctx, { args }) {
      const cas = (await ctx.client().listCas(args.factory)).items;
      ctx.print(cas, () => table(['ID', 'KIND', 'STATE', 'NOT AFTER', 'COMMON NAME'], cas.map((c) => [c.id, c.kind, c.state, c.notAfter, c.commonName])));
    },
  },
  {
    name: ['ca', 'create'],
    args: ['factory'],
    usage: '<factory> [--cn <name>] [--days <n>]',
    summary: 'create an online device CA (Tollgate holds its key and signs enrollment CSRs)',
    options: {
      cn: { type: 'string', value: 'name', help: 'common name of the CA (default: "<factory> device CA")' },
      days: { type: 'string', value: 'n', help: 'lifetime in days (default 3650)' },
    },
    mode: 'any',
    async run(ctx, input) {
      const ca = await ctx.client().createOnlineCa(input.args.factory, { commonName: stringOption(input, 'cn'), days: intOption(input, 'days', 1, 7300) });
      ctx.print(ca, () => `created online CA ${ca.id} (${ca.commonName}) for factory ${input.args.factory}, valid until ${ca.notAfter}`);
    },
  },
  {
    name: ['ca', 'registration-code'],
    args: ['factory'],
    usage: '<factory>',
    summary: 'get a single-use code (valid one hour) for proving possession of an external CA key',
    details: [
      'Issue a certificate with CN=<code>, signed by the external CA key, and pass it to `ca add` with',
      '--verification-cert. For example: openssl req -new -key v.key -subj "/CN=<code>" | openssl x509 -req -CA ca.pem -CAkey ca.key -out v.pem',
    ].join('\n'),
    mode: 'any',
    async run(ctx, { args }) {
      const code = await ctx.client().createCaRegistrationCode(args.factory);
      ctx.print(code, () => `registration code: ${code.code}\nexpires: ${code.expiresAt}`);
    },
  },
  {
    name: ['ca', 'add'],
    args: ['factory'],
    usage: '<factory> --cert <file> --verification-cert <file>',
    summary: 'register an external CA certificate (the factory keeps the key; enroll its devices from their certificates)',
    details: 'The verification certificate proves the CA key is yours: CN = a code from `tollgate ca registration-code`, signed by the CA key.',
    options: {
      cert: { type: 'string', value: 'file', help: 'PEM CA certificate' },
      'verification-cert': { type: 'string', value: 'file', help: 'PEM certificate with CN = registration code, signed by the CA key' },
    },
    mode: 'any',
    async run(ctx, input) {
      const pem = readInputFile(requiredString(input, 'cert'), 'CA certificate');
      const verificationFile = stringOption(input, 'verification-cert');
      const verification = verificationFile === undefined ? undefined : readInputFile(verificationFile, 'verification certificate');
      const ca = await ctx.client().addExternalCa(input.args.factory, pem, verification);
      ctx.print(ca, () => `added external CA ${ca.id} (${ca.commonName}) to factory ${input.args.factory}, valid until ${ca.notAfter}`);
    },
  },
  {
    name: ['ca', 'show'],
    args: ['factory', 'id'],
    usage: '<factory> <id>',
    summary: 'show a device CA with its certificate',
    mode: 'any',
    async run(ctx, { args }) {
      const ca = await ctx.client().getCa(args.factory, args.id);
      ctx.print(ca, () =>
        [
          fields([
            ['id', ca.id],
            ['kind', ca.kind],
            ['common name', ca.commonName],
            ['state', ca.state],
            ['state reason', ca.stateReason],
            ['fingerprint', ca.fingerprint256],
            ['not after', ca.notAfter],
            ['created', ca.createdAt],
          ]),
          ca.certificate.trimEnd(),
        ].join('\n'),
      );
    },
  },
  stateCommand('disable', 'disabled', 'stop a CA from enrolling new devices (devices it issued keep working)'),
  stateCommand('enable', 'active', 'enable a disabled CA again'),
  stateCommand('revoke', 'revoked', 'revoke a CA for good: every device it issued is cut off'),
];
