// "Did you mean …?" for misspelt keys and enum values.

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The closest candidate if `word` looks like a near typo of it (case ignored), else undefined:
 * within 1 edit for words up to 5 characters, 2 beyond, or one a prefix of the other.
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = w.length <= 5 ? 1 : 2;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const l = c.toLowerCase();
    // A dropped or added unit suffix (clockTolerance → clockToleranceSec) counts as close too.
    const affix = Math.min(w.length, l.length) >= 5 && (l.startsWith(w) || w.startsWith(l));
    const dd = affix ? Math.min(distance(w, l), limit) : distance(w, l);
    if (dd <= limit && dd < bestD) { best = c; bestD = dd; }
  }
  return best;
}
