/**
 * Host arrays of a batch -> tf tensors: latents stacked to [B, F, H, W, C]; text embeddings padded to
 * the longest L with a [B, L] mask (1 = token, 0 = padding). Shapes that do not agree across the batch
 * are an error naming the clips.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Conditioning, formatShape, InvalidArgumentError } from '@prfl/tensor';
import type { FloatArray } from '../io/layout.js';

/** Stacks channels-last latents [F, H, W, C] into [B, F, H, W, C]; `names` say which clip each is in errors. */
export function stackLatents(
  arrays: readonly FloatArray[],
  names: readonly string[],
  what = 'latents',
): tf.Tensor5D {
  const first = arrays[0];
  if (!first) throw new InvalidArgumentError(`${what}: empty batch`);
  if (first.shape.length !== 4) {
    throw new InvalidArgumentError(
      `${what}: ${names[0]} has shape ${formatShape(first.shape)}, expected a channels-last latent [F, H, W, C]`,
    );
  }
  const size = first.data.length;
  arrays.forEach((a, i) => {
    if (a.shape.length !== 4 || a.shape.some((d, k) => d !== first.shape[k])) {
      throw new InvalidArgumentError(
        `${what}: shapes differ within a batch: ${names[i]} is ${formatShape(a.shape)} but ${names[0]} is ${formatShape(first.shape)} (batch clips of one size together)`,
      );
    }
  });
  const data = new Float32Array(size * arrays.length);
  arrays.forEach((a, i) => {
    data.set(a.data, i * size);
  });
  return tf.tensor5d(data, [arrays.length, ...(first.shape as [number, number, number, number])]);
}

/**
 * Stacks text embeddings [L_i, D] into [B, Lmax, D], zero-padded, with a mask when lengths differ or a
 * stored mask was given ([L_i] or [1, L_i], 1 for real tokens).
 */
export function stackText(
  arrays: readonly FloatArray[],
  masks: ReadonlyArray<FloatArray | undefined>,
  ids: readonly string[],
): Conditioning {
  const first = arrays[0];
  if (!first) throw new InvalidArgumentError('text embeddings: empty batch');
  const D = first.shape[1] as number;
  let L = 0;
  arrays.forEach((a, i) => {
    if (a.shape.length !== 2 || a.shape[1] !== D) {
      throw new InvalidArgumentError(
        `text embeddings: widths differ within a batch: clip "${ids[i]}" is ${formatShape(a.shape)}, clip "${ids[0]}" is ${formatShape(first.shape)}`,
      );
    }
    L = Math.max(L, a.shape[0] as number);
  });
  const B = arrays.length;
  const data = new Float32Array(B * L * D);
  const mask = new Float32Array(B * L);
  let needMask = false;
  arrays.forEach((a, i) => {
    const Li = a.shape[0] as number;
    data.set(a.data, i * L * D);
    const m = masks[i];
    if (m) {
      needMask = true;
      const len = m.data.length;
      if (len !== Li) {
        throw new InvalidArgumentError(
          `text mask of clip "${ids[i]}" has ${len} entries, its embedding ${Li} tokens`,
        );
      }
      mask.set(m.data, i * L);
    } else {
      mask.fill(1, i * L, i * L + Li);
    }
    if (Li !== L) needMask = true;
  });
  const conditioning: Conditioning = { text: tf.tensor3d(data, [B, L, D]) };
  if (needMask) conditioning.textMask = tf.tensor2d(mask, [B, L]);
  return conditioning;
}

/** Disposes every tensor of a conditioning. */
export function disposeConditioning(c: Conditioning): void {
  const tensors: Array<tf.Tensor | undefined> = [c.text, c.textMask, c.image?.latent, c.image?.tokens];
  tf.dispose(tensors.filter((t): t is tf.Tensor => t !== undefined));
}
