/** Edit distance (insertions, deletions, substitutions, adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  if (!m) return n;
  if (!n) return m;
  let prev2: number[] = [];
  let prev = Array.from({ length: n + 1 }, (_v, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n]!;
}

/**
 * The known words closest to `word`, best first: near misspellings (edit distance up to
 * a third of the length, at least 2) and, for snake_case names, names sharing most words
 * (`soil_moisture_content` → `soil_moisture_content_at_field_capacity`, …).
 */
export function suggest(word: string, known: Iterable<string>, max = 3): string[] {
  const lower = word.toLowerCase();
  const words = new Set(lower.split(/[_\s]+/).filter(Boolean));
  const limit = Math.max(2, Math.floor(lower.length / 3));
  const scored: Array<{ k: string; score: number }> = [];
  for (const k of new Set(known)) {
    const kl = k.toLowerCase();
    if (kl === lower) continue;
    const d = Math.abs(kl.length - lower.length) <= limit ? editDistance(lower, kl) : Infinity;
    if (d <= limit) {
      scored.push({ k, score: d });
      continue;
    }
    if (words.size < 2) continue;
    const kw = new Set(kl.split(/[_\s]+/));
    const shared = [...words].filter((w) => kw.has(w)).length;
    if (shared >= 2 && shared >= words.size - 1)
      scored.push({ k, score: limit + 1 + (words.size - shared) + kw.size / 100 });
  }
  return scored
    .sort((a, b) => a.score - b.score || a.k.localeCompare(b.k))
    .slice(0, max)
    .map((s) => s.k);
}

/** ` (did you mean "a", "b"?)` or '' when nothing is close. */
export function didYouMean(word: string, known: Iterable<string>, max = 3): string {
  const s = suggest(word, known, max);
  return s.length ? ` (did you mean ${s.map((x) => `"${x}"`).join(', ')}?)` : '';
}
