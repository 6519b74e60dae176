import * as tf from '@tensorflow/tfjs-core';
import type { PairwiseBatch, PointwiseBatch } from '@prfl/tensor';
import { disposeConditioning } from '../conditioning.js';

/** Frees every tensor of a PointwiseBatch or PairwiseBatch (latents, labels, conditioning). */
export function disposeBatch(batch: PointwiseBatch | PairwiseBatch): void {
  tf.dispose('latents' in batch ? [batch.latents, batch.labels] : [batch.win, batch.lose]);
  disposeConditioning(batch.conditioning);
}
