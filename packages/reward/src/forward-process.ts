/**
 * The rectified-flow forward process (docs/method.md §2): x_sigma = (1 - sigma) x0 + sigma eps, one sigma per
 * batch element.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, type Sigma } from '@prfl/tensor';

/**
 * Noises clean latents x0 [B, ...] with eps (same shape) at one sigma per batch element.
 * @throws InvalidArgumentError when the shapes differ or `sigmas` does not have B entries.
 */
export function addNoise(x0: tf.Tensor, eps: tf.Tensor, sigmas: readonly Sigma[]): tf.Tensor {
  if (x0.shape.length !== eps.shape.length || x0.shape.some((d, i) => d !== eps.shape[i])) {
    throw new InvalidArgumentError(
      `addNoise: eps must have the shape of x0 ${formatShape(x0.shape)}, got ${formatShape(eps.shape)}`,
    );
  }
  const batch = x0.shape[0] as number;
  if (sigmas.length !== batch) {
    throw new InvalidArgumentError(
      `addNoise: expected ${batch} sigmas (one per batch element), got ${sigmas.length}`,
    );
  }
  return tf.tidy(() => {
    const s = tf.reshape(tf.tensor1d([...sigmas], 'float32'), [batch, ...x0.shape.slice(1).map(() => 1)]);
    return tf.add(tf.mul(tf.sub(1, s), x0), tf.mul(s, eps));
  });
}
