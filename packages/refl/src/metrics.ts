/**
 * What a training step reports: each loss term, the reward's statistics, gradient norms, the learning
 * rate, the step k and its noise level, and wall time and peak tensor memory per phase (rollout, taped
 * step, reward, backward, update) from @prfl/tensor's MemoryMeter. Plain data, safe to JSON.stringify.
 */
import type { MemoryMeter } from '@prfl/tensor';

/**
 * The phases of a step, in the order they run. 'sft' is the SFT term's forward and backward; 'workers' is
 * all of steps 2-6 on worker threads (prflStepParallel).
 */
export type PhaseName =
  | 'sft'
  | 'rollout'
  | 'taped-step'
  | 'decode'
  | 'reward'
  | 'backward'
  | 'update'
  | 'workers';

export interface PhaseSample {
  /** Wall time in milliseconds (summed when a phase runs twice in one step). */
  ms: number;
  /** Peak rise of tf.memory().numBytes above the phase's start. */
  peakBytes: number;
  /** Peak rise in distinct buffer bytes (shared buffers counted once). */
  peakBufferBytes: number;
}

/** What one micro-step of PRFL (or RGB ReFL) did. */
export interface PrflStepMetrics {
  /** Micro-steps taken, this one included (1 for the first). */
  step: number;
  /** Optimizer updates applied so far, this step's included. */
  updates: number;
  /** Optimizer updates this micro-step applied: 0 or 1 ('reference' schedule: up to 2). */
  updatesThisStep: number;
  /** The micro-step's loss or gradient was NaN/Inf: it contributed nothing and no weight changed. */
  skipped: boolean;
  /** sftWeight * SFT + reward term (+ anchor term), as trained. */
  loss: number;
  /** The SFT term, weighted; null when sftWeight is 0 or the term was not finite. */
  sftLoss: number | null;
  /** The reward term, weighted (lambda * hinge, ...). */
  rewardLoss: number;
  /** The anchor term, weighted (absent without an anchor). */
  anchorLoss?: number;
  /** Mean and standard deviation over the batch of sigmoid(r) of the frozen reward. */
  reward: { mean: number; std: number; logitMean: number };
  /** The step the reward step trained and the noise levels around it. */
  k: number;
  /** sigma_k (the taped step's input) and sigma_{k+1} (where the reward reads). */
  sigma: number;
  sigmaNext: number;
  /** t_{k+1}, the timestep the reward read. */
  rewardTimestep: number;
  /** The SFT term's noise levels. */
  sftSigmas: number[];
  /** Samples whose text was replaced by the null conditioning. */
  textDropped: number;
  /** Global L2 norms of each term's gradient (before clipping), and of the update's (before clipping). */
  gradNorm: { sft: number | null; reward: number; update: number | null };
  /** The learning rate of the last update (the current one when none happened). */
  lr: number;
  phases: Partial<Record<PhaseName, PhaseSample>>;
  /** Wall time of the whole micro-step in milliseconds. */
  ms: number;
}

/** Records the phases of one step into a MemoryMeter (which keeps run-long totals) and per step. */
export class PhaseClock {
  readonly phases: Partial<Record<PhaseName, PhaseSample>> = {};
  readonly #meter: MemoryMeter;

  constructor(meter: MemoryMeter) {
    this.#meter = meter;
  }

  /** Starts a phase; call the result to end it. */
  start(phase: PhaseName): () => void {
    const end = this.#meter.start(phase);
    return () => {
      const s = end();
      const prev = this.phases[phase];
      this.phases[phase] = prev
        ? {
            ms: prev.ms + s.ms,
            peakBytes: Math.max(prev.peakBytes, s.peakBytes),
            peakBufferBytes: Math.max(prev.peakBufferBytes, s.peakBufferBytes),
          }
        : { ms: s.ms, peakBytes: s.peakBytes, peakBufferBytes: s.peakBufferBytes };
    };
  }

  /** Runs `fn` as one call of `phase`. */
  measure<T>(phase: PhaseName, fn: () => T): T {
    const end = this.start(phase);
    try {
      return fn();
    } finally {
      end();
    }
  }
}
