/** Human-readable output: aligned tables and key/value blocks. JSON output does not come here. */

/** Control characters from stored labels must not reach a terminal as escape sequences. */
export function printable(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  const s = Array.isArray(value) ? value.join(',') : String(value);
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

export function table(headers: string[], rows: unknown[][]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export function fields(pairs: [string, unknown][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${printable(v)}`).join('\n');
}

/** Lists print one page; when another follows, the command that shows it goes to stderr. */
export function nextPageHint(ctx: { io: { stderr(text: string): void } }, next: string | null, words: string[]): void {
  if (next !== null) ctx.io.stderr(`more: tollgate ${words.join(' ')} --after ${next}\n`);
}
