/**
 * What a named benchmark of `prfl bench` is and returns: a registry entry runs in a command context with
 * the command's options and hands back its rows (one measured item each), the ratios between rows
 * measured in the same run, and the settings they were measured with. `prfl bench` adds the machine,
 * the backend, the versions and the command line around them (commands/bench.ts).
 */
import type { CommandContext } from '../context.js';

/** The options of `prfl bench` every benchmark receives (a benchmark reads the ones it needs). */
export interface BenchOptions {
  /** Weights folder, resolved (undefined: the embedded weights of @prfl/pretrained). */
  weights?: string;
  /** Videos per measured batch. */
  batchSize: number;
  /** Measured calls per item. */
  repeats: number;
  /** Unmeasured calls per item before them (first-use kernel set-up, weight packing, optimizer slots). */
  warmup: number;
  /** Frames per video (4k + 1) instead of the world's (`steps`: clips, generation and decoding). */
  frames?: number;
}

/** One measured item. */
export interface BenchRow {
  /** Stable identifier of the item ('prfl', 'rgb-refl-first', 'matmul-512x512x512'). */
  id: string;
  /** What was measured, for people. */
  what: string;
  /** Videos (or products) per call. */
  batch: number;
  /** Measured calls (after the warm-up). */
  repeats: number;
  /** Median and fastest wall time of one call, in seconds. */
  medianSeconds: number;
  minSeconds: number;
  /** Highest rise of tf.memory().numBytes above the call's start, over the measured calls. */
  peakBytes: number;
  /** The same in distinct buffers (a reshape or a tape's saved clone counted once). */
  peakBufferBytes: number;
  /** Every measured call's seconds, in order. */
  seconds: number[];
  /** Anything else the benchmark reports per item (GFLOP/s, the step k, time per phase, ...). */
  [extra: string]: unknown;
}

/** A ratio of two rows of the same run. */
export interface BenchRatio {
  /** What the ratio says ('PRFL speed-up over RGB ReFL (first frame)'). */
  what: string;
  /** Row ids: the ratio is numerator / denominator. */
  numerator: string;
  denominator: string;
  /** Of which quantity: wall time per call, or peak tensor memory. */
  of: 'seconds' | 'peakBytes';
  /** Of the medians (seconds) or of the peaks (peakBytes). */
  value: number;
  /** Seconds only: of the fastest calls. */
  valueOfMin?: number;
}

/** What a benchmark's run returns. */
export interface BenchOutcome {
  /** Everything the numbers depend on besides the machine: sizes, steps, weights, ... */
  settings: Record<string, unknown>;
  rows: BenchRow[];
  ratios: BenchRatio[];
  /** Single numbers of the whole run (the matMul peak, ...), when the benchmark has any. */
  summary?: Record<string, number>;
}

/** An extra column of the text table: a numeric row field and its header. */
export interface BenchColumn {
  key: string;
  label: string;
}

/** A named benchmark. */
export interface BenchDefinition {
  name: string;
  /** One line for `prfl bench list`. */
  description: string;
  /** Row fields shown as extra columns of the text table. */
  columns?: readonly BenchColumn[];
  /** Runs with the backend already started; reports progress per item and stops between items on Ctrl-C. */
  run(ctx: CommandContext, options: BenchOptions): Promise<BenchOutcome>;
}
