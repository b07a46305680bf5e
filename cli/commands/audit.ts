import { presentAudit } from '../../admin/present.js';
import { intOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { nextPageHint, table } from '../format.js';

export const auditCommands: Command[] = [
  {
    name: ['audit'],
    args: ['factory'],
    usage: '<factory> [--target <uuid|token id|CA id>] [--actor <actor>] [--action <action>] [--outcome success|denied] [--from <time>] [--to <time>] [--limit <n>] [--after <cursor>]',
    summary: 'show the audit trail of a factory, oldest first',
    details: 'When more records follow, the command that shows the next page is printed on stderr.',
    options: {
      target: { type: 'string', value: 'id', help: 'only records about this device, token or CA' },
      actor: { type: 'string', value: 'actor', help: 'only records of this actor, e.g. token:tok_... or oidc:alice@example.com' },
      action: { type: 'string', value: 'action', help: 'only records of this action, e.g. device.revoked' },
      outcome: { type: 'string', value: 'outcome', help: 'only success or denied records' },
      from: { type: 'string', value: 'time', help: 'only records at or after this RFC 3339 time' },
      to: { type: 'string', value: 'time', help: 'only records before this RFC 3339 time' },
      limit: { type: 'string', value: 'n', help: 'at most this many (1-1000, default 100)' },
      after: { type: 'string', value: 'cursor', help: 'continue from the cursor the previous page printed' },
    },
    mode: 'any',
    async run(ctx, input) {
      const page = await ctx.client().audit(input.args.factory, {
        target: stringOption(input, 'target'),
        actor: stringOption(input, 'actor'),
        action: stringOption(input, 'action'),
        outcome: stringOption(input, 'outcome'),
        from: stringOption(input, 'from'),
        to: stringOption(input, 'to'),
        limit: intOption(input, 'limit', 1, 1000),
        cursor: stringOption(input, 'after'),
      });
      const records = page.items;
      nextPageHint(ctx, page.next, ['audit', input.args.factory!]);
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
          : me.kind === 'person'
            ? `${me.identity} of factory ${me.factory ?? '?'} (scopes: ${me.scopes.join(', ')})`
            : `token ${me.token.id} of factory ${me.factory ?? '?'} (scopes: ${me.token.scopes.join(', ')})`,
      );
    },
  },
];
