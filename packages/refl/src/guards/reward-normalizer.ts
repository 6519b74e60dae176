/**
 * Running normalisation of the reward logits (docs/method.md section 5): the reward term reads
 * (r - mean) / std with mean and std exponential moving averages of earlier batches' logits, so a reward
 * whose scale drifts or saturates keeps a usable gradient. The statistics are constants of the tape, and
 * a batch is only observed after its own step, so the first step sees r unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteInRange } from '@prfl/tensor';

export interface RewardNormalizerState {
  mean: number;
  /** E[r^2], the second moment. */
  meanSquare: number;
  count: number;
}

export class RewardNormalizer {
  readonly momentum: number;
  readonly epsilon: number;
  #state: RewardNormalizerState = { mean: 0, meanSquare: 1, count: 0 };

  constructor(momentum = 0.99, epsilon = 1e-6) {
    assertFiniteInRange('rewardNormMomentum', momentum, 0, 1);
    assertFiniteInRange('rewardNorm epsilon', epsilon, 0);
    this.momentum = momentum;
    this.epsilon = epsilon;
  }

  get mean(): number {
    return this.#state.count === 0 ? 0 : this.#state.mean;
  }

  get std(): number {
    if (this.#state.count === 0) return 1;
    const variance = this.#state.meanSquare - this.#state.mean ** 2;
    return Math.sqrt(Math.max(variance, 0) + this.epsilon);
  }

  /** (r - mean) / std with the statistics so far (identity before the first observation). */
  apply(logits: tf.Tensor): tf.Tensor {
    if (this.#state.count === 0) return logits;
    return tf.div(tf.sub(logits, this.mean), this.std);
  }

  /** Folds a batch of logits into the statistics (the first batch sets them). One small device read. */
  observe(logits: tf.Tensor): void {
    const values = Array.from(logits.dataSync());
    if (values.length === 0) return;
    const mean = values.reduce((a, x) => a + x, 0) / values.length;
    const meanSquare = values.reduce((a, x) => a + x * x, 0) / values.length;
    const s = this.#state;
    // With one video per batch, a first-batch variance of 0 would blow the first normalised values up:
    // start the second moment at mean^2 + 1 (unit variance) unless the batch has a spread.
    const m = this.momentum;
    this.#state =
      s.count === 0
        ? { mean, meanSquare: values.length > 1 ? meanSquare : mean * mean + 1, count: 1 }
        : {
            mean: m * s.mean + (1 - m) * mean,
            meanSquare: m * s.meanSquare + (1 - m) * meanSquare,
            count: s.count + 1,
          };
  }

  getState(): RewardNormalizerState {
    return { ...this.#state };
  }

  setState(state: RewardNormalizerState): void {
    assertFiniteInRange('reward normalizer mean', state?.mean);
    assertFiniteInRange('reward normalizer meanSquare', state?.meanSquare, 0);
    assertFiniteInRange('reward normalizer count', state?.count, 0);
    this.#state = { mean: state.mean, meanSquare: state.meanSquare, count: state.count };
  }
}
