/** The ablation aggregations of docs/method.md §4: mean pooling (paper 83.4%) and max pooling (78.5%) over tokens. */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '@prfl/tensor';

function check(what: string, tokens: tf.Tensor): void {
  if (tokens.rank !== 3) {
    throw new InvalidArgumentError(`${what}: tokens must be [B, N, D], got ${formatShape(tokens.shape)}`);
  }
}

/** Mean over the N tokens: [B, N, D] -> [B, D]. */
export function meanPool(tokens: tf.Tensor): tf.Tensor2D {
  check('meanPool', tokens);
  return tf.mean(tokens, 1) as tf.Tensor2D;
}

/** Max over the N tokens, per feature: [B, N, D] -> [B, D]. */
export function maxPool(tokens: tf.Tensor): tf.Tensor2D {
  check('maxPool', tokens);
  return tf.max(tokens, 1) as tf.Tensor2D;
}
