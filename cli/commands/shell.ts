import { packageVersion } from '../../helper/version.js';
import type { Command } from '../command.js';
import { COMPLETION_SHELLS, completionScript } from '../completion.js';
import { usageError } from '../failure.js';

export const shellCommands: Command[] = [
  {
    name: ['version'],
    args: [],
    usage: '',
    summary: 'print the version (also: tollgate --version)',
    mode: 'standalone',
    async run(ctx) {
      const version = packageVersion();
      ctx.print({ version }, () => `tollgate ${version}`);
    },
  },
  {
    name: ['completion'],
    args: ['shell'],
    usage: 'bash|zsh',
    summary: 'print the shell completion script for bash or zsh',
    details: [
      'bash: source <(tollgate completion bash)   (or save it in /etc/bash_completion.d/tollgate)',
      'zsh:  source <(tollgate completion zsh)    (after compinit; or save it as _tollgate in a directory of $fpath)',
    ].join('\n'),
    mode: 'standalone',
    async run(ctx, { args }) {
      const shell = COMPLETION_SHELLS.find((s) => s === args.shell);
      if (!shell) throw usageError('shell_unsupported', `completion is available for ${COMPLETION_SHELLS.join(' and ')}, not "${String(args.shell).slice(0, 40)}"`);
      ctx.io.stdout(completionScript(shell));
    },
  },
];
