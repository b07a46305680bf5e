/**
 * "Did you mean ...?" for mistyped commands and options. An edit distance (optimal string
 * alignment: insertions, deletions, substitutions and swaps of neighbours) over a few dozen short
 * names; small enough not to want a library.
 */

export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates closest to `typed`: within a third of its length (at least 1, at most 3 edits),
 * or those it is a prefix of. Best first, at most three.
 */
export function closest(typed: string, candidates: readonly string[]): string[] {
  const limit = Math.max(1, Math.min(3, Math.floor(typed.length / 3)));
  return [...new Set(candidates)]
    .map((c) => ({ c, d: c.startsWith(typed) && typed.length >= 2 ? 0.5 : editDistance(typed, c) }))
    .filter(({ d }) => d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, 3)
    .map(({ c }) => c);
}

/** ` (did you mean "a" or "b"?)` (each candidate shown after `prefix`), or nothing. */
export function didYouMean(typed: string, candidates: readonly string[], prefix = ''): string {
  const found = closest(typed, candidates.filter((c) => c !== ''));
  if (found.length === 0) return '';
  return ` (did you mean ${found.map((c) => `"${prefix}${c}"`).join(' or ')}?)`;
}
