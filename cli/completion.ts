import { GLOBAL_OPTIONS, type Command, type OptionSpec } from './command.js';

/**
 * Shell completion. The scripts are thin: on TAB they call `tollgate __complete -- <words>` and
 * offer what it prints, one candidate per line, so what completes is always what the parser takes.
 * No candidate (an argument such as a factory name, or an option's file value) falls back to file
 * names.
 */

function optionsOf(command: Command | undefined): Record<string, OptionSpec> {
  return { ...GLOBAL_OPTIONS, ...(command?.options ?? {}) };
}

/** The command the positional words name so far, if complete. */
function commandFor(commands: readonly Command[], words: readonly string[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.name.length <= words.length && c.name.every((w, i) => words[i] === w) && (!best || c.name.length > best.name.length)) best = c;
  }
  return best;
}

/**
 * Candidates for the last of `words` (the word being typed, possibly empty), given the words before
 * it on the command line (without the program name).
 */
export function completions(commands: readonly Command[], words: readonly string[]): string[] {
  const current = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const positionals: string[] = [];
  let pendingValue: OptionSpec | undefined;
  for (const word of before) {
    if (pendingValue) {
      pendingValue = undefined;
      continue;
    }
    if (word.startsWith('-') && word !== '-') {
      const spec = optionsOf(commandFor(commands, positionals))[word.replace(/^-+/, '').split('=')[0]!];
      if (spec?.type === 'string' && !word.includes('=')) pendingValue = spec;
      continue;
    }
    positionals.push(word);
  }
  const startsWith = (c: string) => c.startsWith(current);
  if (pendingValue) return (pendingValue.choices ?? []).filter(startsWith);

  const helping = positionals[0] === 'help';
  const path = helping ? positionals.slice(1) : positionals;
  const command = commandFor(commands, path);
  if (current.startsWith('-') && !helping) {
    return Object.keys(optionsOf(command)).map((name) => `--${name}`).filter(startsWith);
  }
  if (command && command.name.length <= path.length && !commands.some((c) => c.name.length > path.length && path.every((w, i) => c.name[i] === w))) {
    return []; // the command's own arguments: free text (names, UUIDs) or files
  }
  const next = commands.filter((c) => c.name.length > path.length && path.every((w, i) => c.name[i] === w)).map((c) => c.name[path.length]!);
  return [...new Set(path.length === 0 && !helping ? [...next, 'help'] : next)].filter(startsWith);
}

const BASH = `# bash completion for tollgate: source <(tollgate completion bash), or save it as
# /etc/bash_completion.d/tollgate (or ~/.local/share/bash-completion/completions/tollgate).
_tollgate() {
  local IFS=$'\\n'
  local words=("\${COMP_WORDS[@]:1:COMP_CWORD}")
  COMPREPLY=($(tollgate __complete -- "\${words[@]}" 2>/dev/null))
}
complete -o default -F _tollgate tollgate
`;

const ZSH = `#compdef tollgate
# zsh completion for tollgate: source <(tollgate completion zsh) after compinit, or save it as
# _tollgate in a directory of $fpath.
_tollgate() {
  local -a candidates
  candidates=("\${(@f)$(tollgate __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} > 0 )); then
    compadd -- "\${candidates[@]}"
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == "_tollgate" ]]; then
  _tollgate "$@"
elif (( $+functions[compdef] )); then
  compdef _tollgate tollgate
fi
`;

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;

export function completionScript(shell: (typeof COMPLETION_SHELLS)[number]): string {
  return shell === 'bash' ? BASH : ZSH;
}
