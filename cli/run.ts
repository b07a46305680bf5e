import { packageVersion } from '../helper/version.js';
import { findCommand, hasFlag, leadingWords, parseCommand, stringOption, wantsHelp } from './args.js';
import type { Command } from './command.js';
import { COMMANDS } from './commands/index.js';
import { completions } from './completion.js';
import { Context, type Io } from './context.js';
import { EXIT_OK, EXIT_USAGE, exitCodeOf, formatError, formatJsonError, usageError } from './failure.js';
import { commandHelp, overview } from './help.js';
import { didYouMean } from './suggest.js';

export interface RunOptions {
  io?: Io;
  env?: NodeJS.ProcessEnv;
}

const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

const helpCommand: Command = {
  name: ['help'],
  args: [],
  usage: '[command]',
  summary: 'describe the commands, or one command',
  mode: 'standalone',
  async run() {
    // Dispatched by runCli itself: it needs the trailing words, which this declaration has no slot for.
  },
};

/** Runs one CLI invocation; resolves to the exit code. Never throws. */
export async function runCli(argv: string[], options: RunOptions = {}): Promise<number> {
  const io = options.io ?? processIo;
  const env = options.env ?? process.env;
  const commands = [...COMMANDS, helpCommand];
  // Decided before anything can fail, so that every error of this invocation has the asked-for form.
  const json = safely(() => hasFlag(argv, 'json'), false);
  let ctx: Context | undefined;
  try {
    // What the shell completion scripts call: candidates for the last word, one per line.
    if (argv[0] === '__complete') {
      const candidates = completions(COMMANDS, argv.slice(argv[1] === '--' ? 2 : 1));
      io.stdout(candidates.map((c) => `${c}\n`).join(''));
      return EXIT_OK;
    }
    const words = leadingWords(argv);
    if (words.length === 0 && hasFlag(argv, 'version')) {
      const version = packageVersion();
      io.stdout(json ? `${JSON.stringify({ version })}\n` : `tollgate ${version}\n`);
      return EXIT_OK;
    }
    if (words[0] === 'help') return help(io, commands, words.slice(1));
    const command = findCommand(commands, words);
    if (!command) {
      // No complete command: show what there is, on stdout if asked for, else as a usage error.
      const asked = wantsHelp(argv);
      const isGroup = words[0] !== undefined && commands.some((c) => c.name[0] === words[0]);
      if (words.length === 0 || (isGroup && (words.length === 1 || asked))) {
        (asked ? io.stdout : io.stderr)(overview(commands, isGroup ? [words[0]!] : []));
        return asked ? EXIT_OK : EXIT_USAGE;
      }
      const unknown = words.slice(0, isGroup ? 2 : 1).join(' ').slice(0, 80);
      // The mistyped word is compared with its siblings only: `device enrol` with `enroll`, `renew`, ...
      const typed = words[isGroup ? 1 : 0] ?? '';
      const siblings = commands.filter((c) => !isGroup || (c.name[0] === words[0] && c.name.length > 1)).map((c) => c.name[isGroup ? 1 : 0]!);
      const prefix = isGroup ? `${words[0]} ` : '';
      throw usageError('usage_unknown_command', `unknown command "${unknown}"${didYouMean(typed, siblings, prefix)}; see tollgate help${isGroup ? ` ${words[0]}` : ''}`);
    }
    if (wantsHelp(argv)) {
      io.stdout(commandHelp(command));
      return EXIT_OK;
    }
    const input = parseCommand(command, argv);
    const url = stringOption(input, 'url') ?? (env.TOLLGATE_URL || null);
    ctx = new Context({
      io,
      env,
      json: input.options.json === true,
      configFile: stringOption(input, 'config') ?? (env.TOLLGATE_CONFIG || null),
      url,
    });
    if (command.mode === 'local' && ctx.remote) {
      throw usageError(
        'operator_only',
        `tollgate ${command.name.join(' ')} works on the store and key files as the operator; run it on the Tollgate host without --url or TOLLGATE_URL`,
      );
    }
    return (await command.run(ctx, input)) ?? EXIT_OK;
  } catch (e) {
    io.stderr(json ? formatJsonError(e) : formatError(e));
    return exitCodeOf(e);
  } finally {
    try {
      await ctx?.close();
    } catch (e) {
      io.stderr(json ? formatJsonError(e) : formatError(e));
    }
  }
}

function safely<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

function help(io: Io, commands: readonly Command[], words: string[]): number {
  if (words.length === 0) {
    io.stdout(overview(commands));
    return EXIT_OK;
  }
  const command = findCommand(commands, words);
  if (command && command.name.length === words.length) {
    io.stdout(commandHelp(command));
    return EXIT_OK;
  }
  if (commands.some((c) => c.name[0] === words[0])) {
    io.stdout(overview(commands, [words[0]!]));
    return EXIT_OK;
  }
  const asked = words.join(' ').slice(0, 80);
  const known = words.length === 1 ? commands.map((c) => c.name[0]!) : commands.filter((c) => c.name[0] === words[0]).map((c) => c.name[1] ?? '');
  const suggestion = didYouMean(words.at(-1) ?? '', known, words.length === 1 ? '' : `${words[0]} `);
  io.stderr(formatError(usageError('usage_unknown_command', `no command "${asked}"${suggestion}; see tollgate help`)));
  return EXIT_USAGE;
}
