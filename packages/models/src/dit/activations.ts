/** The activations of the Wan DiT, composed from ops that have gradients on every backend. */
import * as tf from '@tensorflow/tfjs-core';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

type GradFn = (...args: unknown[]) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
};

/**
 * GELU, tanh approximation (torch `nn.GELU(approximate='tanh')`): the FFN and the text embedding.
 * 0.5 x (1 + tanh(z)) = x s with s = sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3): the same function
 * with fewer ops (and wasm's Sigmoid is ~5x faster than its Tanh). Its own gradient,
 * s + x s (1 - s) 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2), keeps x and s on the tape instead of every
 * intermediate.
 */
export const geluTanh: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const s = tf.sigmoid(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), 2 * SQRT_2_OVER_PI));
  save([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: tf.Tensor, [sx, ss]: tf.Tensor[]) => {
      const xv = sx as tf.Tensor;
      const sv = ss as tf.Tensor;
      const dz = tf.add(tf.mul(tf.square(xv), 3 * 0.044715 * 2 * SQRT_2_OVER_PI), 2 * SQRT_2_OVER_PI);
      const ds = tf.mul(tf.mul(xv, tf.mul(sv, tf.sub(1, sv))), dz);
      return [tf.mul(dy, tf.add(sv, ds))];
    },
  };
}) as unknown as GradFn) as unknown as (x: tf.Tensor) => tf.Tensor;

/** GELU, exact (torch `nn.GELU()`): x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). Wan's img_emb uses it. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** SiLU (swish): x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}
