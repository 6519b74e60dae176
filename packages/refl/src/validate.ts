/** Checks of what arrives from callers, with messages naming the argument, the expectation and the value. */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '@prfl/tensor';
import type { VideoBatch } from './types.js';

/** A batch of clean latents [B, F, H, W, C] with C = `channels` and text [B, L, D]; returns B. */
export function checkVideoBatch(batch: VideoBatch, channels: number, what = 'batch'): number {
  const x0 = batch?.latents;
  if (!(x0 instanceof tf.Tensor) || x0.rank !== 5 || x0.dtype !== 'float32') {
    throw new InvalidArgumentError(
      `${what}.latents: expected a float32 tensor [B, F, H, W, ${channels}], got ${x0 instanceof tf.Tensor ? `${x0.dtype} ${formatShape(x0.shape)}` : String(x0)}`,
    );
  }
  if (x0.shape[4] !== channels) {
    throw new InvalidArgumentError(
      `${what}.latents: expected ${channels} channels (the generator's latentChannels), got ${formatShape(x0.shape)}`,
    );
  }
  const text = batch.conditioning?.text;
  if (!(text instanceof tf.Tensor) || text.rank !== 3 || text.shape[0] !== x0.shape[0]) {
    throw new InvalidArgumentError(
      `${what}.conditioning.text: expected [${x0.shape[0]}, L, D] (one row per video), got ${text instanceof tf.Tensor ? formatShape(text.shape) : String(text)}`,
    );
  }
  return x0.shape[0];
}
