import { presentAudit } from '../../admin/present.js';
import { intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { table } from '../format.js';

export const auditCommands: Command[] = [
  {
    name: ['audit'],
    args: ['factory'],
    usage: '<factory> [--target <uuid|token id|CA id>] [--limit <n>] [--after <id>]',
    summary: 'show the audit trail of a factory, oldest first',
    options: {
      target: { type: 'string', value: 'id', help: 'only records about this device, token or CA' },
      limit: { type: 'string', value: 'n', help: 'at most this many (1-1000, default 100)' },
      after: { type: 'string', value: 'id', help: 'continue after this record id' },
    },
    mode: 'any',
    async run(ctx, input) {
      const records = await ctx.client().audit(input.args.factory, {
        target: stringOption(input, 'target'),
        limit: intOption(input, 'limit', 1, 1000),
        after: stringOption(input, 'after'),
      });
      ctx.print(records, () =>
        table(
          ['ID', 'AT', 'ACTOR', 'ACTION', 'OUTCOME', 'TARGET', 'REASON'],
          records.map((r) => [r.id, r.at, r.actor, r.action, r.outcome, r.target, r.reason]),
        ),
      );
    },
  },
  {
    name: ['audit-all'],
    args: [],
    usage: '[--action <action>] [--limit <n>] [--after <id>]',
    summary: "show the whole audit trail, oldest first: every factory's and the accounts' (operator only)",
    details: 'Accounts (static users, OIDC, AWS instances, hook users) belong to no factory; their token requests are recorded here with actors such as user:alice or oidc:dev@example.com.',
    options: {
      action: { type: 'string', value: 'action', help: 'only records of this action, e.g. realm.refused' },
      limit: { type: 'string', value: 'n', help: 'at most this many (1-1000, default 100)' },
      after: { type: 'string', value: 'id', help: 'continue after this record id' },
    },
    mode: 'local',
    async run(ctx, input) {
      const action = stringOption(input, 'action');
      const after = stringOption(input, 'after');
      const records = (
        await ctx.authority().store.listAudit({
          ...(action !== undefined ? { action } : {}),
          ...(after !== undefined ? { after } : {}),
          limit: intOption(input, 'limit', 1, 1000) ?? 100,
        })
      ).map(presentAudit);
      ctx.print(records, () =>
        table(
          ['ID', 'AT', 'ACTOR', 'ACTION', 'OUTCOME', 'TARGET', 'REASON'],
          records.map((r) => [r.id, r.at, r.actor, r.action, r.outcome, r.target, r.reason]),
        ),
      );
    },
  },
  {
    name: ['whoami'],
    args: [],
    usage: '',
    summary: 'show who the CLI acts as: the operator (local) or a token (remote)',
    mode: 'any',
    async run(ctx) {
      const me = await ctx.client().whoami();
      ctx.print(me, () =>
        me.kind === 'operator'
          ? 'operator (local: the store and key files directly)'
          : `token ${me.token.id} of factory ${me.factory ?? '?'} (scopes: ${me.token.scopes.join(', ')})`,
      );
    },
  },
];
