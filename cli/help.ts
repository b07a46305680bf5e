import { GLOBAL_OPTIONS, type Command, type OptionSpec } from './command.js';

/** Help texts, generated from the command declarations so they cannot drift from the parser. */

function optionLines(options: Record<string, OptionSpec>): string[] {
  const entries = Object.entries(options).map(([name, o]) => {
    const left = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` <${o.value ?? 'value'}>` : ''}`;
    return [left, `${o.help}${o.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.max(...entries.map(([l]) => l.length));
  return entries.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`);
}

export function commandHelp(command: Command): string {
  const name = `tollgate ${command.name.join(' ')}`;
  const lines = [`usage: ${name}${command.usage ? ` ${command.usage}` : ''}`, '', command.summary];
  if (command.details) lines.push('', command.details);
  if (command.mode === 'local') lines.push('', 'Runs on the Tollgate host (store and key files); not available with --url.');
  if (command.options && Object.keys(command.options).length > 0) lines.push('', 'options:', ...optionLines(command.options));
  lines.push('', 'global options:', ...optionLines(GLOBAL_OPTIONS));
  return `${lines.join('\n')}\n`;
}

export function overview(commands: readonly Command[], prefix: string[] = []): string {
  const shown = commands.filter((c) => prefix.every((w, i) => c.name[i] === w));
  const entries = shown.map((c) => [[...c.name, ...c.args.map((a) => `<${a}>`)].join(' '), c.summary] as const);
  const width = Math.min(60, Math.max(...entries.map(([l]) => l.length)));
  const lines = [
    'usage: tollgate <command> [arguments] [options]',
    '',
    'Tollgate: device certificates in, short-lived registry tokens out.',
    '',
    'commands:',
    ...entries.map(([l, r]) => (l.length > width ? `  ${l}\n  ${''.padEnd(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`)),
    '',
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Without --url (or TOLLGATE_URL) the CLI works on the local store and key files as the operator;',
    'with it, on a remote admin API with the token in TOLLGATE_TOKEN.',
    'Exit codes: 0 done, 1 refused (not found, conflict, forbidden, unauthenticated), 2 invalid usage or input.',
    'tollgate help <command> describes a command.',
  ];
  return `${lines.join('\n')}\n`;
}
