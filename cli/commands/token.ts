import { existsSync, writeFileSync } from 'node:fs';
import { API_TOKEN_SCOPES } from '../../shared/authority/index.js';
import { intOption, listOption, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { usageError } from '../failure.js';
import { table } from '../format.js';

export const tokenCommands: Command[] = [
  {
    name: ['token', 'create'],
    args: ['factory'],
    usage: '<factory> --scope <scope> [--scope <scope> ...] [--description <text>] [--days <n>]',
    summary: 'create a factory API token; its secret is shown once',
    details: [
      `Scopes: ${API_TOKEN_SCOPES.join(', ')}.`,
      'containers:* are for registry clients (CI pushes with containers:write); devices:*, tokens:write for the admin API;',
      'devices:test only issues short-lived test devices. A token can only create tokens with scopes it has itself.',
    ].join('\n'),
    options: {
      scope: { type: 'string', multiple: true, value: 'scope', choices: API_TOKEN_SCOPES, help: 'a scope to grant (repeatable)' },
      description: { type: 'string', value: 'text', help: 'what the token is for' },
      days: { type: 'string', value: 'n', help: 'lifetime in days (default: no expiry)' },
      'creds-file': {
        type: 'string',
        value: 'file',
        help: 'write username:secret to this new file (mode 0600), the form --creds/--dest-creds take, instead of printing the secret',
      },
    },
    mode: 'any',
    async run(ctx, input) {
      const scopes = listOption(input, 'scope');
      if (scopes.length === 0) throw usageError('usage_option_missing', `--scope is required (one or more of ${API_TOKEN_SCOPES.join(', ')})`);
      const credsFile = stringOption(input, 'creds-file');
      // Checked before the token exists, so a refusal here creates nothing.
      if (credsFile !== undefined && existsSync(credsFile)) {
        throw usageError('creds_file_exists', `${credsFile} already exists; it is never overwritten`);
      }
      const token = await ctx.client().createToken(input.args.factory, {
        scopes,
        description: stringOption(input, 'description'),
        days: intOption(input, 'days', 1, 3650),
      });
      // Written with O_EXCL: an existing file is never overwritten with a secret.
      if (credsFile !== undefined) writeFileSync(credsFile, `${token.username}:${token.secret}\n`, { mode: 0o600, flag: 'wx' });
      // With --creds-file the secret goes into the file only: not also onto a terminal or into a CI log.
      const { secret: _secret, ...withoutSecret } = token;
      ctx.print(credsFile !== undefined ? { ...withoutSecret, credsFile } : token, () =>
        [
          `created token ${token.id} for factory ${input.args.factory} (scopes: ${token.scopes.join(', ')}${token.expiresAt ? `, expires ${token.expiresAt}` : ''})`,
          `username: ${token.username}`,
          credsFile !== undefined ? `secret:   written to ${credsFile} (mode 0600) as username:secret, and shown nowhere else` : `secret:   ${token.secret}`,
          '',
          ...(credsFile !== undefined
            ? ['Registry clients log in with the file, e.g.', `  skopeo copy --dest-creds "$(cat ${credsFile})" oci:./image:latest docker://<registry>/${input.args.factory}/app:latest`]
            : [
                'The secret is shown only now; keep it in your CI secret store. Registry clients log in with both, e.g.',
                `  skopeo copy --dest-creds ${token.username}:<secret> oci:./image:latest docker://<registry>/${input.args.factory}/app:latest`,
              ]),
        ].join('\n'),
      );
    },
  },
  {
    name: ['token', 'list'],
    args: ['factory'],
    usage: '<factory>',
    summary: 'list the API tokens of a factory (never their secrets)',
    mode: 'any',
    async run(ctx, { args }) {
      const tokens = (await ctx.client().listTokens(args.factory)).items;
      ctx.print(tokens, () =>
        table(
          ['ID', 'SCOPES', 'CREATED', 'EXPIRES', 'REVOKED', 'DESCRIPTION'],
          tokens.map((t) => [t.id, t.scopes, t.createdAt, t.expiresAt, t.revokedAt, t.description]),
        ),
      );
    },
  },
  {
    name: ['token', 'revoke'],
    args: ['factory', 'id'],
    usage: '<factory> <id>',
    summary: 'revoke an API token',
    mode: 'any',
    async run(ctx, { args }) {
      await ctx.client().revokeToken(args.factory, args.id);
      ctx.print({ revoked: args.id }, () => `revoked token ${args.id}`);
    },
  },
];
