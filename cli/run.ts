import { findCommand, leadingWords, parseCommand, stringOption, wantsHelp } from './args.js';
import type { Command } from './command.js';
import { COMMANDS } from './commands/index.js';
import { Context, type Io } from './context.js';
import { EXIT_OK, EXIT_USAGE, exitCodeOf, formatError, usageError } from './failure.js';
import { commandHelp, overview } from './help.js';

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
  let ctx: Context | undefined;
  try {
    const words = leadingWords(argv);
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
      throw usageError('usage_unknown_command', `unknown command "${unknown}"; see tollgate help`);
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
    io.stderr(formatError(e));
    return exitCodeOf(e);
  } finally {
    try {
      ctx?.close();
    } catch (e) {
      io.stderr(formatError(e));
    }
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
  io.stderr(formatError(usageError('usage_unknown_command', `no command "${words.join(' ').slice(0, 80)}"; see tollgate help`)));
  return EXIT_USAGE;
}
