import { intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { table } from '../format.js';

export const operatorCommands: Command[] = [
  {
    name: ['operator', 'token', 'create'],
    args: [],
    usage: '[--description <text>] [--days <n>]',
    summary: 'create an operator token: the admin API as the operator, from any host; its secret is shown once',
    details: [
      'With TOLLGATE_URL and TOLLGATE_TOKEN=tgo_..., every command works remotely, the operator\'s too',
      '(factory create/list, keys, audit-all, registry-config, doctor). It opens every factory: keep it like',
      'a root password. The first one is made on a Tollgate host (local mode).',
    ].join('\n'),
    options: {
      description: { type: 'string', value: 'text', help: 'what or who it is for' },
      days: { type: 'string', value: 'n', help: 'lifetime in days (1-365, default 90)' },
    },
    mode: 'any',
    async run(ctx, input) {
      const created = await ctx.client().createOperatorToken({ description: stringOption(input, 'description'), days: intOption(input, 'days', 1, 365) });
      ctx.print(created, () => `created operator token ${created.id} (expires ${created.expiresAt})\nsecret (shown once): ${created.secret}`);
    },
  },
  {
    name: ['operator', 'token', 'list'],
    args: [],
    usage: '',
    summary: 'list the operator tokens (never their secrets)',
    mode: 'any',
    async run(ctx) {
      const tokens = await ctx.client().listOperatorTokens();
      ctx.print(tokens, () => table(['ID', 'DESCRIPTION', 'CREATED', 'EXPIRES', 'REVOKED'], tokens.map((t) => [t.id, t.description, t.createdAt, t.expiresAt, t.revokedAt])));
    },
  },
  {
    name: ['operator', 'token', 'revoke'],
    args: ['id'],
    usage: '<id>',
    summary: 'revoke an operator token at once',
    mode: 'any',
    async run(ctx, { args }) {
      await ctx.client().revokeOperatorToken(args.id);
      ctx.print({ revoked: args.id }, () => `operator token ${args.id} is revoked`);
    },
  },
];
