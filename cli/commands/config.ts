import { stringify } from 'yaml';
import { Acl } from '../../authsvc/acl.js';
import { accountSettings, closeAccountSettings } from '../../authsvc/authn/index.js';
import { adminUrl, gatewayUrl, realmUrl } from '../../shared/config.js';
import type { Command } from '../command.js';

export const configCommands: Command[] = [
  {
    name: ['config', 'check'],
    args: [],
    usage: '',
    summary: 'validate the configuration (file and TOLLGATE_* overrides) and print the effective one',
    details:
      'Exits 2 listing every invalid key, ACL pattern or unreadable certificate the realm would refuse to start with. Keys live under pkiDir and tokens in the store; static users\' password hashes are shown only by their kind.',
    mode: 'standalone',
    async run(ctx) {
      const config = ctx.config();
      // Build what authsvc would build, so that what fails its start-up fails here first.
      const accounts = await accountSettings(config);
      for (const warning of new Acl(accounts.acl).warnings()) ctx.io.stderr(`warning: ${warning}\n`);
      await closeAccountSettings(accounts);
      const users = Object.fromEntries(
        Object.entries(config.authsvc.users).map(([name, user]) => [name, { ...user, password: `(${user.password.startsWith('$argon2') ? 'argon2' : 'bcrypt'} hash)` }]),
      );
      // A webhook URL may carry credentials (`https://user:pass@host/...`); show the user only.
      const maskUrl = (url: string) => {
        const u = new URL(url);
        if (u.password !== '') u.password = '***';
        return u.toString();
      };
      const hooks = Object.fromEntries(
        Object.entries(config.authsvc.hooks).map(([name, hook]) => [name, hook?.url ? { ...hook, url: maskUrl(hook.url) } : hook]),
      );
      // Where it came from is said in the header line, not as a key no configuration file may have.
      const { source, ...settings } = config;
      const effective = {
        ...settings,
        authsvc: { ...config.authsvc, users, hooks },
        urls: { gateway: gatewayUrl(config), admin: adminUrl(config), realm: realmUrl(config) },
      };
      ctx.print(effective, () => `# configuration is valid (source: ${source ?? 'built-in defaults'})\n${stringify(effective)}`);
    },
  },
];
