/**
 * Deterministic order and splits: the order of an epoch is a function of (seed, epoch) only, the same on
 * every machine and backend; a clip without a stored split gets one from a hash of its id.
 */
import { Generator, InvalidArgumentError, type BatchOptions } from '@prfl/tensor';
import type { Split } from '../moving-shapes/split.js';

/** Checks batch options; names the bad field. */
export function checkBatchOptions(options: BatchOptions): void {
  if (!options || typeof options !== 'object')
    throw new InvalidArgumentError('batches: options must be { batchSize, seed, epoch }');
  const { batchSize, seed, epoch } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new InvalidArgumentError(`batches: batchSize must be a positive integer, got ${String(batchSize)}`);
  }
  if (!Number.isSafeInteger(seed))
    throw new InvalidArgumentError(`batches: seed must be a safe integer, got ${String(seed)}`);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new InvalidArgumentError(`batches: epoch must be a non-negative integer, got ${String(epoch)}`);
}

/** The visiting order of n items in an epoch: a permutation drawn from (seed, epoch), or 0..n-1 unshuffled. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): number[] {
  if (!shuffle) return Array.from({ length: n }, (_, i) => i);
  return new Generator(`${seed}/epoch/${epoch}`).permutation(n);
}

/** Splits an order into batches of `batchSize` (the last one smaller unless `dropLast`). */
export function chunk<T>(order: readonly T[], batchSize: number, dropLast = false): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const b = order.slice(i, i + batchSize);
    if (b.length < batchSize && dropLast) break;
    out.push(b);
  }
  return out;
}

/** Fractions of clips that go to validation and test when a split is derived from the id. */
export interface SplitFractions {
  val: number;
  test: number;
}

/** FNV-1a of a string, as a number in [0, 1). */
function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Finalise (murmur3 fmix32) so that ids differing in the last character spread over [0, 1).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/**
 * The split of a clip that has none stored: a hash of (salt, id) below `test` goes to test, below
 * `test + val` to val, the rest to train. Stable when clips are added or removed.
 */
export function assignSplit(
  id: string,
  fractions: SplitFractions = { val: 0.1, test: 0.1 },
  salt = '',
): Split {
  const { val, test } = fractions;
  if (!(val >= 0 && test >= 0 && val + test <= 1)) {
    throw new InvalidArgumentError(
      `assignSplit: fractions must be >= 0 and sum to <= 1, got val ${val}, test ${test}`,
    );
  }
  const u = unitHash(`${salt}/${id}`);
  return u < test ? 'test' : u < test + val ? 'val' : 'train';
}
