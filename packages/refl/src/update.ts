/**
 * One optimizer update of a run: the learning rate for this update (constant in the paper), AdamW on
 * already clipped gradients, and the counters. A gradient holding NaN/Inf makes AdamW skip the update
 * (its nonFinite 'skip' policy): no weight changes and the skip is counted.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { PrflRun } from './run.js';

/** Applies `grads` (not disposed here); returns whether the update happened. */
export function applyUpdate(run: PrflRun, grads: Readonly<Record<string, tf.Tensor>>): boolean {
  const o = run.options;
  const factor = o.lrSchedule ? o.lrSchedule(run.updates) : 1;
  run.optimizer.setLearningRate(o.lr * factor);
  const { applied } = run.optimizer.step(grads);
  if (applied) run.updates++;
  else run.skippedUpdates++;
  return applied;
}
