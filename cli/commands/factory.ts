import { KEY_ALGORITHM_NAMES } from '../../shared/pki/index.js';
import { intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { fields, table } from '../format.js';

export const factoryCommands: Command[] = [
  {
    name: ['factory', 'create'],
    args: ['name'],
    usage: '<name>',
    summary: 'create a factory (operator: locally, or remotely with an operator token)',
    details: 'The name becomes the first component of the factory\'s repositories: a-z, 0-9 and single . _ - between them.',
    mode: 'any',
    async run(ctx, { args }) {
      const factory = await ctx.client().createFactory(args.name);
      ctx.print(factory, () => `created factory ${factory.name} (${factory.id})\nnext: tollgate ca create ${factory.name}`);
    },
  },
  {
    name: ['factory', 'list'],
    args: [],
    usage: '',
    summary: "list the factories (the operator's: all; a factory token's: its own)",
    mode: 'any',
    async run(ctx) {
      const factories = (await ctx.client().listFactories()).items;
      ctx.print(factories, () => table(['NAME', 'ID', 'CREATED'], factories.map((f) => [f.name, f.id, f.createdAt])));
    },
  },
  {
    name: ['factory', 'show'],
    args: ['name'],
    usage: '<name>',
    summary: 'show a factory',
    mode: 'any',
    async run(ctx, { args }) {
      const f = await ctx.client().getFactory(args.name);
      ctx.print(f, () => fields([['name', f.name], ['id', f.id], ['created', f.createdAt]]));
    },
  },
  {
    name: ['factory', 'settings'],
    args: ['factory'],
    usage: '<factory> [--jit off|pending|active] [--cert-max-days <n>] [--test-cert-max-hours <n>] [--key-types <list>]',
    summary: 'show or change a factory\'s just-in-time registration and certificate policy',
    details: [
      'Without options, shows the settings in force. --jit pending registers unknown devices of the',
      'factory\'s CAs on first contact as pending (an admin enables them); active lets them in at once.',
      `--key-types takes a comma-separated list of ${KEY_ALGORITHM_NAMES}.`,
    ].join('\n'),
    options: {
      jit: { type: 'string', value: 'mode', help: 'just-in-time registration: off (default), pending or active' },
      'cert-max-days': { type: 'string', value: 'n', help: 'default and maximum lifetime of device certificates' },
      'test-cert-max-hours': { type: 'string', value: 'n', help: 'maximum lifetime of test device certificates' },
      'key-types': { type: 'string', value: 'list', help: 'allowed device key types, comma-separated' },
    },
    mode: 'any',
    async run(ctx, input) {
      const keyTypes = stringOption(input, 'key-types');
      const patch = {
        ...(stringOption(input, 'jit') !== undefined ? { jit: stringOption(input, 'jit') } : {}),
        ...(intOption(input, 'cert-max-days', 1, 3650) !== undefined ? { certMaxDays: intOption(input, 'cert-max-days', 1, 3650) } : {}),
        ...(intOption(input, 'test-cert-max-hours', 1, 720) !== undefined ? { testCertMaxHours: intOption(input, 'test-cert-max-hours', 1, 720) } : {}),
        ...(keyTypes !== undefined ? { keyTypes: keyTypes.split(',').map((k) => k.trim()).filter((k) => k.length > 0) } : {}),
      };
      const client = ctx.client();
      const s = Object.keys(patch).length > 0 ? await client.updateFactorySettings(input.args.factory, patch) : await client.getFactorySettings(input.args.factory);
      ctx.print(s, () =>
        fields([
          ['factory', s.factory],
          ['jit', s.jitMode],
          ['cert max days', String(s.certMaxDays)],
          ['test cert max hours', String(s.testCertMaxHours)],
          ['key types', s.keyTypes.join(', ')],
          ['updated', s.updatedAt],
        ]),
      );
    },
  },
];
