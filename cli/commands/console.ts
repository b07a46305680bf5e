import { createConsoleSigninCode } from '../../shared/authority/index.js';
import { adminUrl } from '../../shared/config.js';
import type { Command } from '../command.js';
import { OPERATOR } from '../context.js';

export const consoleCommands: Command[] = [
  {
    name: ['console'],
    args: [],
    usage: '',
    summary: 'print the web console URL; on the Tollgate host, also a one-time sign-in link as the operator',
    details: [
      'Remotely (--url or TOLLGATE_URL) it prints the console URL: sign in there with an admin API token, or',
      'with your company account when admin.console.oidc is configured. Locally it also prints a link that',
      'signs one browser in as the operator; it works once, within five minutes.',
    ].join('\n'),
    mode: 'any',
    async run(ctx) {
      if (ctx.remote) {
        const url = `${ctx.url!.replace(/\/+$/, '')}/`;
        ctx.print({ url }, () => `console: ${url}\nsign in with an admin API token, or with your company account if single sign-on is configured`);
        return;
      }
      const base = adminUrl(ctx.config());
      const { code, expiresAt } = await createConsoleSigninCode(ctx.authority(), OPERATOR);
      // The code travels in the fragment: browsers never send it to a server or in a Referer.
      const link = `${base}/signin#code=${code}`;
      ctx.print({ url: `${base}/`, signInLink: link, expiresAt }, () =>
        [`console: ${base}/`, `sign in as the operator (once, until ${expiresAt}):`, `  ${link}`].join('\n'),
      );
    },
  },
];
