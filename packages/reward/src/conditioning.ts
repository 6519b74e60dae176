import * as tf from '@tensorflow/tfjs-core';
import type { Conditioning } from '@prfl/tensor';

/** Gathers batch rows `indices` of every conditioning tensor (new tensors; the caller disposes them). */
export function gatherConditioning(c: Conditioning, indices: readonly number[] | tf.Tensor1D): Conditioning {
  const idx = indices instanceof tf.Tensor ? indices : tf.tensor1d([...indices], 'int32');
  const out: Conditioning = { text: tf.gather(c.text, idx) };
  if (c.textMask) out.textMask = tf.gather(c.textMask, idx);
  if (c.image) {
    out.image = { latent: tf.gather(c.image.latent, idx) };
    if (c.image.tokens) out.image.tokens = tf.gather(c.image.tokens, idx);
  }
  if (idx !== indices) idx.dispose();
  return out;
}

/** Frees every tensor of a conditioning. */
export function disposeConditioning(c: Conditioning): void {
  tf.dispose([
    c.text,
    ...(c.textMask ? [c.textMask] : []),
    ...(c.image ? [c.image.latent, ...(c.image.tokens ? [c.image.tokens] : [])] : []),
  ]);
}
