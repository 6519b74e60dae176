/**
 * What every taped loss term of a step goes through after its tape: the loss read back once, the
 * gradient's global norm (which is also the NaN/Inf check: the reference skips such losses), and the
 * `inspectGradients` hook.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Grads, globalNorm } from './gradients.js';
import type { GradientTerm, PrflRun } from './run.js';

export interface TermResult {
  /** The loss value as trained (weighted, clamped). */
  loss: number;
  /** By variable name; the caller disposes them. */
  grads: Grads;
  /** Global L2 norm of `grads` before any clipping. */
  norm: number;
  /** Loss and gradient are finite: the term may be used. */
  finite: boolean;
}

/**
 * Clamps a loss to [-maxLoss, maxLoss] (null: unchanged). Outside the range the gradient is zero, as with
 * torch.clamp, which the reference applies to losses above 1e6.
 */
export function clampLoss(loss: tf.Scalar, maxLoss: number | null): tf.Scalar {
  return maxLoss === null ? loss : (tf.clipByValue(loss, -maxLoss, maxLoss) as tf.Scalar);
}

/** Reads the loss, measures the gradient and calls the run's inspectGradients hook. Disposes `value`. */
export function settleTerm(
  run: Pick<PrflRun, 'inspectGradients'>,
  term: GradientTerm,
  taped: { value: tf.Scalar; grads: tf.NamedTensorMap },
): TermResult {
  const loss = taped.value.dataSync()[0] as number;
  taped.value.dispose();
  const grads = taped.grads as Grads;
  const norm = globalNorm(grads);
  run.inspectGradients?.(term, grads);
  return { loss, grads, norm, finite: Number.isFinite(loss) && Number.isFinite(norm) };
}
