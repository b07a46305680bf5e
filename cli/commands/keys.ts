import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHM_NAMES } from '../../shared/pki/index.js';
import { flag, intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { table } from '../format.js';

const PUBLISH_HINT = 'registries learn of key changes from their root bundle: run tollgate registry-config and restart the registry';

export const keysCommands: Command[] = [
  {
    name: ['keys', 'list'],
    args: [],
    usage: '',
    summary: 'list the token-signing keys (operator)',
    mode: 'any',
    async run(ctx) {
      const keys = await ctx.client().listSigningKeys();
      ctx.print(keys, () => table(['KID', 'ALG', 'STATUS', 'CREATED', 'ACTIVATED'], keys.map((k) => [k.kid, k.alg, k.status, k.createdAt, k.activatedAt])));
    },
  },
  {
    name: ['keys', 'add'],
    args: [],
    usage: '[--alg <alg>] [--days <n>] [--activate]',
    summary: 'add a token-signing key (operator); rotation is add, publish, then activate',
    options: {
      alg: { type: 'string', value: 'alg', help: `one of ${KEY_ALGORITHM_NAMES} (default ${DEFAULT_KEY_ALGORITHM})` },
      days: { type: 'string', value: 'n', help: 'lifetime of its certificate in days (default 365)' },
      activate: { type: 'boolean', help: 'sign with it at once (only safe if registries already trust it)' },
    },
    mode: 'any',
    async run(ctx, input) {
      const key = await ctx.client().addSigningKey({
        alg: stringOption(input, 'alg'),
        days: intOption(input, 'days', 1, 3650),
        activate: flag(input, 'activate'),
      });
      ctx.print(key, () => `added signing key ${key.kid} (${key.alg}, ${key.status})\n${PUBLISH_HINT}`);
    },
  },
  {
    name: ['keys', 'activate'],
    args: ['kid'],
    usage: '<kid>',
    summary: 'sign new tokens with this key (operator); the previous one stays trusted',
    mode: 'any',
    async run(ctx, { args }) {
      await ctx.client().activateSigningKey(args.kid);
      ctx.print({ activated: args.kid }, () => `signing key ${args.kid} is now active`);
    },
  },
  {
    name: ['keys', 'retire'],
    args: ['kid'],
    usage: '<kid>',
    summary: 'retire a key that no longer signs (operator)',
    mode: 'any',
    async run(ctx, { args }) {
      await ctx.client().retireSigningKey(args.kid);
      ctx.print({ retired: args.kid }, () => `signing key ${args.kid} is retired\n${PUBLISH_HINT}`);
    },
  },
];
