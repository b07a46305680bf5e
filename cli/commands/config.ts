import { stringify } from 'yaml';
import { adminUrl, gatewayUrl, realmUrl } from '../../shared/config.js';
import type { Command } from '../command.js';

export const configCommands: Command[] = [
  {
    name: ['config', 'check'],
    args: [],
    usage: '',
    summary: 'validate the configuration (file and TOLLGATE_* overrides) and print the effective one',
    details: 'Exits 2 listing every invalid key. The configuration holds no secrets: keys live under pkiDir, tokens in the store.',
    mode: 'standalone',
    async run(ctx) {
      const config = ctx.config();
      const effective = {
        ...config,
        urls: { gateway: gatewayUrl(config), admin: adminUrl(config), realm: realmUrl(config) },
      };
      ctx.print(effective, () => `# configuration is valid (source: ${config.source ?? 'built-in defaults'})\n${stringify(effective)}`);
    },
  },
];
