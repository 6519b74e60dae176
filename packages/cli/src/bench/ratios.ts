/**
 * Ratios between rows of one run: a speed-up is read from two items measured minutes apart on the same
 * machine, backend and load, never across runs (machines and their load drift).
 */
import { PrflError } from '@prfl/tensor';
import type { BenchRatio, BenchRow } from './types.js';

function row(rows: readonly BenchRow[], id: string): BenchRow {
  const r = rows.find((x) => x.id === id);
  if (r === undefined) {
    throw new PrflError(
      `bench ratio: expected a row '${id}', got rows ${rows.map((x) => `'${x.id}'`).join(', ') || 'none'}`,
    );
  }
  return r;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** numerator / denominator of two rows' seconds (median and fastest) or peak tensor memory. */
export function rowRatio(
  rows: readonly BenchRow[],
  what: string,
  numerator: string,
  denominator: string,
  of: BenchRatio['of'],
): BenchRatio {
  const n = row(rows, numerator);
  const d = row(rows, denominator);
  if (of === 'peakBytes') {
    return { what, numerator, denominator, of, value: round(n.peakBytes / d.peakBytes) };
  }
  return {
    what,
    numerator,
    denominator,
    of,
    value: round(n.medianSeconds / d.medianSeconds),
    valueOfMin: round(n.minSeconds / d.minSeconds),
  };
}
