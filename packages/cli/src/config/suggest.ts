/** "did you mean ...?" for unknown configuration keys: the closest known key by edit distance. */

/** Levenshtein distance (insert, delete, substitute; each costs 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost));
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * The candidate closest to `input`, or undefined when none is close enough. A key is compared whole and
 * by its last segment, so both `optimizer.learnig_rate` and `train.learning_rate` find
 * `optimizer.learning_rate`; so does the abbreviation `optimizer.lr` (initials, same section) or a word of it (`model.lora.rank`).
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const last = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  const section = (k: string) => k.slice(0, Math.max(0, k.lastIndexOf('.')));
  const initials = (k: string) =>
    k
      .split('_')
      .map((w) => w[0] ?? '')
      .join('');
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const whole = editDistance(input, c);
    const leaf = editDistance(last(input), last(c)) + 0.5;
    // An abbreviation by initials in the same section: optimizer.lr -> optimizer.learning_rate.
    // ... or one word of it: model.lora.rank -> model.lora.lora_rank.
    const sameSection = section(input) === section(c) && last(input).length >= 2;
    const abbreviation =
      sameSection && (initials(last(c)) === last(input) || last(c).split('_').includes(last(input)))
        ? 1
        : Number.POSITIVE_INFINITY;
    const score = Math.min(whole, leaf, abbreviation);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  const limit = Math.max(2, Math.floor(last(input).length / 3));
  return bestScore <= limit ? best : undefined;
}
