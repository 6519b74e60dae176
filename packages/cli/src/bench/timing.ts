/**
 * How every `prfl bench` item is timed, as the benchmark scripts of the packages time theirs
 * (packages/refl/bench, packages/models/bench/dit.mjs, packages/reward/bench/reward.mjs): unmeasured
 * warm-up calls first (first-use kernel set-up, XNNPACK weight packing, optimizer slots), then measured
 * calls, each one whole call with its results read back (so an asynchronous backend has finished), its
 * wall time and its peak tensor memory taken by @prfl/tensor's `measureMemory` (the rise of
 * tf.memory().numBytes above the call's start, and the same in distinct buffers); the item reports the
 * median and the fastest call, and the highest peaks. items.ts decides which calls run when.
 */
import { measureMemory } from '@prfl/tensor';

/** One call of the measured work; it reads its results back before it resolves. */
export type MeasuredCall = () => unknown;

/** What an item's measured calls came to. */
export interface Timing {
  warmup: number;
  repeats: number;
  medianSeconds: number;
  minSeconds: number;
  peakBytes: number;
  peakBufferBytes: number;
  /** Every measured call's seconds, in order. */
  seconds: number[];
}

/** The median (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Seconds rounded to the microsecond (what a wall clock of this kind resolves). */
export function roundSeconds(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/** One measured call: its seconds and peak tensor memory. */
export interface CallSample {
  seconds: number;
  peakBytes: number;
  peakBufferBytes: number;
}

/** Runs `call` once under `measureMemory`. */
export async function measureCall(call: MeasuredCall): Promise<CallSample> {
  const m = await measureMemory(async () => {
    await call();
  });
  return { seconds: m.ms / 1000, peakBytes: m.peakBytes, peakBufferBytes: m.peakBufferBytes };
}

/** The median and fastest of measured calls and their highest peaks. */
export function summarizeCalls(samples: readonly CallSample[], warmup: number): Timing {
  const seconds = samples.map((s) => s.seconds);
  return {
    warmup,
    repeats: samples.length,
    medianSeconds: roundSeconds(median(seconds)),
    minSeconds: roundSeconds(Math.min(...seconds)),
    peakBytes: Math.max(0, ...samples.map((s) => s.peakBytes)),
    peakBufferBytes: Math.max(0, ...samples.map((s) => s.peakBufferBytes)),
    seconds: seconds.map(roundSeconds),
  };
}
