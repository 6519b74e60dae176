/**
 * Which step k of the N-step chain the reward step trains (docs/method.md section 5): the reference draws
 * k uniformly from {0, ..., N - 2} (random.randint(0, N - 2)), so that x_{k+1} is still noisy and the
 * reward reads it at t_{k+1}. The range can be narrowed to a third of the chain (the paper's ablation of
 * where the process reward is applied) or given explicitly.
 */
import { type Generator, InvalidArgumentError } from '@prfl/tensor';

/**
 * 'full': {0..N-2}. 'early' / 'middle' / 'late': the first, second or last third of {0..N-2} (for N = 40:
 * 0-12, 13-25, 26-38). [lo, hi]: both inclusive, 0 <= lo <= hi <= N - 2.
 */
export type StepRange = 'full' | 'early' | 'middle' | 'late' | readonly [number, number];

/** The inclusive bounds of a StepRange for an N-step schedule. */
export function resolveStepRange(range: StepRange, numSteps: number): [number, number] {
  if (!Number.isInteger(numSteps) || numSteps < 2) {
    throw new InvalidArgumentError(
      `stepRange: the schedule needs at least 2 steps (k + 1 must be a step), got numSteps ${String(numSteps)}`,
    );
  }
  const last = numSteps - 2;
  const count = last + 1;
  // Thirds by floor(i * count / 3): with 39 candidates, 13 each; with fewer, the thirds may be empty.
  const third = (i: number) => Math.floor((i * count) / 3);
  const thirds: Record<string, [number, number]> = {
    full: [0, last],
    early: [third(0), third(1) - 1],
    middle: [third(1), third(2) - 1],
    late: [third(2), last],
  };
  if (typeof range === 'string') {
    const r = thirds[range];
    if (r === undefined) {
      throw new InvalidArgumentError(
        `stepRange: expected 'full', 'early', 'middle', 'late' or [lo, hi], got ${JSON.stringify(range)}`,
      );
    }
    if (r[1] < r[0]) {
      throw new InvalidArgumentError(
        `stepRange: '${range}' is empty for a ${numSteps}-step schedule (${count} candidate steps); use more steps or [lo, hi]`,
      );
    }
    return r;
  }
  if (!Array.isArray(range) || range.length !== 2) {
    throw new InvalidArgumentError(
      `stepRange: expected 'full', 'early', 'middle', 'late' or [lo, hi], got ${JSON.stringify(range)}`,
    );
  }
  const [lo, hi] = range as [number, number];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi > last) {
    throw new InvalidArgumentError(
      `stepRange: expected integers 0 <= lo <= hi <= ${last} (N - 2 for ${numSteps} steps), got [${String(lo)}, ${String(hi)}]`,
    );
  }
  return [lo, hi];
}

/** k uniform in [lo, hi] (one draw of `generator`). */
export function sampleStep(generator: Generator, [lo, hi]: readonly [number, number]): number {
  return lo + generator.nextInt(hi - lo + 1);
}
