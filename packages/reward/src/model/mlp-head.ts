/**
 * PAVRM's head (docs/method.md §4): an MLP D -> 1024 -> 512 -> 1 with ReLU between layers, giving one logit per
 * batch element; the reward probability is sigmoid(logit). Layers are named fc1, fc2, fc3 as in the
 * reference's `MLP` module; widths are configurable for small backbones (fc1..fc{k+1}).
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, linear } from '@prfl/tensor';

/** One Linear layer in tfjs layout: weight [in, out], bias [out]. */
export interface LinearWeights {
  weight: tf.Tensor;
  bias: tf.Tensor;
}

/** The paper's hidden widths. */
export const PAPER_HEAD_HIDDEN: readonly number[] = Object.freeze([1024, 512]);

/**
 * z [B, D] -> logits [B]: ReLU after every layer but the last.
 * @throws InvalidArgumentError when z is not [B, D] with the first layer's D.
 */
export function mlpHead(z: tf.Tensor, layers: readonly LinearWeights[]): tf.Tensor1D {
  const first = layers[0];
  if (first === undefined) throw new InvalidArgumentError('mlpHead: expected at least one layer');
  if (z.rank !== 2 || z.shape[1] !== first.weight.shape[0]) {
    throw new InvalidArgumentError(
      `mlpHead: expected pooled features [B, ${first.weight.shape[0]}], got ${formatShape(z.shape)}`,
    );
  }
  return tf.tidy(() => {
    let h = z;
    layers.forEach((layer, i) => {
      h = linear(h, layer.weight as tf.Tensor2D, layer.bias as tf.Tensor1D);
      if (i < layers.length - 1) h = tf.relu(h);
    });
    return tf.reshape(h, [-1]) as tf.Tensor1D;
  });
}
