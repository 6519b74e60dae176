/**
 * Binary classification metrics as the reference reports them (sklearn's accuracy, precision, recall,
 * F1 with zero_division = 0) plus ROC-AUC, on reward probabilities and 0/1 labels.
 */
import { InvalidArgumentError } from '@prfl/tensor';

export interface BinaryMetrics {
  /** Samples scored. */
  n: number;
  /** Fraction with (probability >= threshold) == label. */
  accuracy: number;
  /** TP / (TP + FP); 0 when nothing is predicted positive. */
  precision: number;
  /** TP / (TP + FN); 0 when there are no positives. */
  recall: number;
  /** 2PR / (P + R); 0 when both are 0. */
  f1: number;
  /** Area under the ROC curve (ties count half); NaN when only one class is present. */
  rocAuc: number;
  /** Mean binary cross-entropy of the probabilities (clamped to [1e-7, 1 - 1e-7]). */
  loss: number;
}

/**
 * ROC-AUC as the Mann-Whitney statistic: the probability that a random positive scores above a random
 * negative, ties counting one half. NaN when either class is empty.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkLengths(scores, labels);
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  let positives = 0;
  let rankSum = 0;
  // Average ranks over ties (1-based).
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k] as number] === 1) {
        positives++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const negatives = idx.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * ROC-AUC within groups: the probability that a positive scores above a negative of the SAME group (e.g.
 * two videos of one prompt), ties counting one half, over all such pairs pooled. A reward that only knows
 * which prompts tend to come out well (a prior on the text) reaches a high plain ROC-AUC and 0.5 here;
 * only what it reads from the video itself moves this one. NaN when no group has both labels.
 */
export function withinGroupAuc(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  groups: readonly string[],
): { auc: number; pairs: number } {
  checkLengths(scores, labels);
  if (groups.length !== labels.length) {
    throw new InvalidArgumentError(
      `metrics: ${groups.length} groups but ${labels.length} labels; expected one group per label`,
    );
  }
  const byGroup = new Map<string, { pos: number[]; neg: number[] }>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (y !== 0 && y !== 1) throw new InvalidArgumentError(`labels[${i}]: expected 0 or 1, got ${String(y)}`);
    if (!Number.isFinite(scores[i] as number)) {
      throw new InvalidArgumentError(`scores[${i}]: expected a finite number, got ${String(scores[i])}`);
    }
    const g = byGroup.get(groups[i] as string) ?? { pos: [], neg: [] };
    (labels[i] === 1 ? g.pos : g.neg).push(scores[i] as number);
    byGroup.set(groups[i] as string, g);
  }
  let pairs = 0;
  let wins = 0;
  for (const { pos, neg } of byGroup.values()) {
    for (const p of pos) {
      for (const q of neg) {
        pairs++;
        wins += p > q ? 1 : p === q ? 0.5 : 0;
      }
    }
  }
  return { auc: pairs === 0 ? Number.NaN : wins / pairs, pairs };
}

/** Accuracy, precision, recall, F1, ROC-AUC and BCE of probabilities against 0/1 labels. */
export function binaryMetrics(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold = 0.5,
): BinaryMetrics {
  checkLengths(probabilities, labels);
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  let loss = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const p = probabilities[i] as number;
    if (y !== 0 && y !== 1) throw new InvalidArgumentError(`labels[${i}]: expected 0 or 1, got ${String(y)}`);
    if (!Number.isFinite(p))
      throw new InvalidArgumentError(`probabilities[${i}]: expected a finite number, got ${String(p)}`);
    const predicted = p >= threshold ? 1 : 0;
    if (predicted === 1 && y === 1) tp++;
    else if (predicted === 1) fp++;
    else if (y === 0) tn++;
    else fn++;
    const q = Math.min(1 - 1e-7, Math.max(1e-7, p));
    loss -= y * Math.log(q) + (1 - y) * Math.log(1 - q);
  }
  const n = labels.length;
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return {
    n,
    accuracy: n === 0 ? Number.NaN : (tp + tn) / n,
    precision,
    recall,
    f1,
    rocAuc: rocAuc(probabilities, labels),
    loss: n === 0 ? Number.NaN : loss / n,
  };
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new InvalidArgumentError(
      `metrics: ${a.length} scores but ${b.length} labels; expected one label per score`,
    );
  }
}
