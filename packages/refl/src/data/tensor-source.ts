/**
 * A VideoSource over tensors already in memory (latents encoded once, a small prompt set), with the
 * ordering contract of @prfl/tensor's PreferenceSource: the order is a function of (seed, epoch), so a
 * resumed run sees the same batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type BatchOptions,
  type Conditioning,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
} from '@prfl/tensor';
import type { VideoBatch, VideoSource } from '../types.js';
import { checkVideoBatch } from '../validate.js';

/** Gathers batch rows `indices` of every conditioning tensor (new tensors; the caller disposes them). */
export function gatherConditioning(c: Conditioning, indices: tf.Tensor1D): Conditioning {
  const out: Conditioning = { text: tf.gather(c.text, indices) };
  if (c.textMask) out.textMask = tf.gather(c.textMask, indices);
  if (c.image) {
    out.image = { latent: tf.gather(c.image.latent, indices) };
    if (c.image.tokens) out.image.tokens = tf.gather(c.image.tokens, indices);
  }
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

/** Frees a batch's latents and conditioning. */
export function disposeVideoBatch(batch: VideoBatch): void {
  batch.latents.dispose();
  disposeConditioning(batch.conditioning);
}

/** Batch index lists of one epoch: shuffled by Generator(`${seed}/epoch-${epoch}`) unless shuffle is false. */
export function epochOrder(size: number, options: BatchOptions): number[][] {
  if (!Number.isInteger(options?.batchSize) || options.batchSize < 1) {
    throw new InvalidArgumentError(
      `batchSize: expected a positive integer, got ${String(options?.batchSize)}`,
    );
  }
  const idx =
    options.shuffle === false
      ? Array.from({ length: size }, (_, i) => i)
      : new Generator(`${options.seed}/epoch-${options.epoch}`).permutation(size);
  const out: number[][] = [];
  for (let i = 0; i < size; i += options.batchSize) {
    const chunk = idx.slice(i, i + options.batchSize);
    if (chunk.length < options.batchSize && options.dropLast) break;
    out.push(chunk);
  }
  return out;
}

/**
 * Videos held as tensors: latents [N, F, H, W, C] and conditioning with batch N. Each batch is made of
 * new tensors (gathered) that the consumer disposes; the source keeps its own.
 */
export function tensorVideoSource(data: {
  ids?: readonly string[];
  latents: LatentVideo;
  conditioning: Conditioning;
}): VideoSource {
  const n = checkVideoBatch(data, data.latents?.shape?.[4] as number, 'data');
  const ids = data.ids ?? Array.from({ length: n }, (_, i) => String(i));
  if (ids.length !== n)
    throw new InvalidArgumentError(`ids: expected ${n} ids (one per video), got ${ids.length}`);
  return {
    size: n,
    async *batches(options: BatchOptions) {
      for (const chunk of epochOrder(n, options)) {
        const idx = tf.tensor1d(chunk, 'int32');
        const batch: VideoBatch = {
          ids: chunk.map((i) => ids[i] as string),
          latents: tf.gather(data.latents, idx),
          conditioning: gatherConditioning(data.conditioning, idx),
        };
        idx.dispose();
        yield batch;
      }
    },
  };
}
