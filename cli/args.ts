import { parseArgs } from 'node:util';
import { GLOBAL_OPTIONS, type Command, type Input, type OptionSpec, type OptionValues } from './command.js';
import { usageError } from './failure.js';
import { didYouMean } from './suggest.js';

/**
 * Command-line parsing on node:util parseArgs. parseArgs runs non-strict and this module checks
 * the tokens itself, so that every mistake gets a precise message naming the command.
 */

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

function toParseArgsOptions(specs: Record<string, OptionSpec>) {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, s] of Object.entries(specs)) {
    out[name] = { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) };
  }
  return out;
}

function tokenize(argv: string[], specs: Record<string, OptionSpec>): Token[] {
  return parseArgs({ args: argv, options: toParseArgsOptions(specs), strict: false, allowPositionals: true, tokens: true }).tokens;
}

/** The positional words before any `--`, for finding the command. */
export function leadingWords(argv: string[]): string[] {
  return tokenize(argv, GLOBAL_OPTIONS)
    .filter((t): t is Extract<Token, { kind: 'positional' }> => t.kind === 'positional')
    .map((t) => t.value);
}

/** The longest command whose words start `words`. */
export function findCommand(commands: readonly Command[], words: string[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.name.length <= words.length && c.name.every((w, i) => words[i] === w) && (!best || c.name.length > best.name.length)) best = c;
  }
  return best;
}

/** True if `--<name>` is given before any `--` (whatever the command, and even if the rest is wrong). */
export function hasFlag(argv: string[], name: string): boolean {
  return tokenize(argv, GLOBAL_OPTIONS).some((t) => t.kind === 'option' && t.name === name);
}

/** True if any token asks for help, so that `tollgate device enroll --help` never fails on a missing argument. */
export function wantsHelp(argv: string[]): boolean {
  return hasFlag(argv, 'help');
}

/** Parses argv for `command` (its options plus the global ones) into checked positionals and options. */
export function parseCommand(command: Command, argv: string[]): Input {
  const specs = { ...GLOBAL_OPTIONS, ...(command.options ?? {}) };
  const label = `tollgate ${command.name.join(' ')}`;
  const options: OptionValues = {};
  const positionals: string[] = [];
  const tokens = tokenize(argv, specs);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    const spec = Object.hasOwn(specs, t.name) ? specs[t.name] : undefined;
    if (!spec) {
      const typed = t.rawName.replace(/^-+/, '');
      throw usageError('usage_unknown_option', `${label} has no option ${t.rawName}${didYouMean(typed, Object.keys(specs), '--')}; see tollgate help ${command.name.join(' ')}`);
    }
    let value: string | boolean;
    if (spec.type === 'boolean') {
      if (t.value !== undefined) throw usageError('usage_option_takes_no_value', `${t.rawName} takes no value`);
      value = true;
    } else {
      // A value that looks like an option was an option: `--csr --name x` lacks the file.
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-')) {
        throw usageError('usage_option_value_missing', `${t.rawName} needs a value (${t.rawName} <${spec.value ?? 'value'}>)`);
      }
      value = t.value;
    }
    if (spec.multiple) {
      const list = (options[t.name] as string[] | undefined) ?? [];
      list.push(value as string);
      options[t.name] = list;
    } else {
      if (options[t.name] !== undefined) throw usageError('usage_option_repeated', `${t.rawName} is given more than once`);
      options[t.name] = value;
    }
  }
  const rest = positionals.slice(command.name.length);
  if (rest.length < command.args.length) {
    const missing = command.args.slice(rest.length).map((a) => `<${a}>`).join(' ');
    throw usageError('usage_argument_missing', `${label} needs ${missing}; usage: ${label} ${command.usage}`);
  }
  if (rest.length > command.args.length && !command.variadic) {
    throw usageError('usage_argument_unexpected', `unexpected argument "${clip(rest[command.args.length]!)}"; usage: ${label} ${command.usage}`);
  }
  const args: Record<string, string> = {};
  command.args.forEach((name, i) => (args[name] = rest[i]!));
  return { args, options, ...(command.variadic ? { rest: rest.slice(command.args.length) } : {}) };
}

const clip = (s: string) => (s.length > 80 ? `${s.slice(0, 80)}...` : s);

// ---- typed accessors ------------------------------------------------------------------------

export function stringOption(input: Input, name: string): string | undefined {
  const v = input.options[name];
  return typeof v === 'string' ? v : undefined;
}

export function requiredString(input: Input, name: string): string {
  const v = stringOption(input, name);
  if (v === undefined) throw usageError('usage_option_missing', `--${name} is required`);
  return v;
}

export function listOption(input: Input, name: string): string[] {
  const v = input.options[name];
  return Array.isArray(v) ? v : [];
}

export function flag(input: Input, name: string): boolean {
  return input.options[name] === true;
}

/** A whole-number option within [min, max]; undefined when absent. */
export function intOption(input: Input, name: string, min: number, max: number): number | undefined {
  const raw = stringOption(input, name);
  if (raw === undefined) return undefined;
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw usageError(`${name}_invalid`, `--${name} must be a whole number between ${min} and ${max}, not "${clip(raw)}"`);
  }
  return n;
}
