import type { Context } from './context.js';

/** How every `tollgate` command is declared: the dispatcher, the parser and the help read this. */

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (collected in order). */
  multiple?: boolean;
  short?: string;
  /** Placeholder shown in help, e.g. `file`. */
  value?: string;
  /** The values it takes, when they are a fixed few (offered by shell completion). */
  choices?: readonly string[];
  help: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Input {
  /** Positional arguments by the names in `Command.args` (all required). */
  args: Record<string, string>;
  options: OptionValues;
  /** Positional arguments after `args`, for commands that take any number (`variadic`). */
  rest?: string[];
}

/**
 * Where a command may run.
 * - `any`: through the AdminClient, so locally as the operator or remotely with a token;
 * - `local`: needs the store and key files (operator only, or starts services);
 * - `standalone`: needs neither (configuration checks, help).
 */
export type Mode = 'any' | 'local' | 'standalone';

export interface Command {
  /** Command words, e.g. ['device', 'enroll']. */
  name: string[];
  /** Required positional arguments, in order. */
  args: string[];
  /** Takes any number of further positional arguments (in `Input.rest`). */
  variadic?: boolean;
  /** Synopsis after the command words, e.g. `<factory> (--csr <file> | --cert <file>) [options]`. */
  usage: string;
  summary: string;
  /** More lines for `tollgate help <command>`. */
  details?: string;
  options?: Record<string, OptionSpec>;
  mode: Mode;
  /** Resolves to the exit code (default 0). */
  run(ctx: Context, input: Input): Promise<number | void>;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', value: 'file', help: 'configuration file (default: $TOLLGATE_CONFIG, else built-in defaults)' },
  json: { type: 'boolean', help: 'machine-readable JSON output' },
  url: { type: 'string', value: 'url', help: 'talk to a remote admin API (default: $TOLLGATE_URL) with the token in $TOLLGATE_TOKEN' },
  help: { type: 'boolean', short: 'h', help: 'show help for the command' },
};
