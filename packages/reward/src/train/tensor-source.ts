/**
 * Preference sources over tensors already in memory (latents encoded once, a small labelled set), with
 * the shuffling contract of @prfl/tensor's PreferenceSource: the order is a function of (seed, epoch).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type BatchOptions,
  type Conditioning,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
  type PairwiseBatch,
  type PointwiseBatch,
  type PreferenceSource,
} from '@prfl/tensor';
import { gatherConditioning } from '../conditioning.js';
import { assertLabelTargets, assertLatentVideo } from '../validate.js';

function checkOptions(options: BatchOptions): void {
  if (!Number.isInteger(options?.batchSize) || options.batchSize < 1) {
    throw new InvalidArgumentError(
      `batchSize: expected a positive integer, got ${String(options?.batchSize)}`,
    );
  }
}

function order(size: number, options: BatchOptions): number[][] {
  checkOptions(options);
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
 * Labelled videos held as tensors: latents [N, F, H, W, C], labels [N] in [0, 1] (0/1, or soft), conditioning with batch N.
 * Each batch is made of new tensors (gathered), which the consumer disposes; the source keeps its own.
 */
export function tensorPointwiseSource(data: {
  ids?: readonly string[];
  latents: LatentVideo;
  labels: tf.Tensor1D;
  conditioning: Conditioning;
}): PreferenceSource<PointwiseBatch> {
  assertLatentVideo('latents', data.latents);
  const n = data.latents.shape[0];
  assertLabelTargets('labels', data.labels, n);
  if (data.conditioning?.text?.shape[0] !== n) {
    throw new InvalidArgumentError(
      `conditioning.text: expected batch ${n}, got ${String(data.conditioning?.text?.shape)}`,
    );
  }
  const ids = data.ids ?? Array.from({ length: n }, (_, i) => String(i));
  if (ids.length !== n) throw new InvalidArgumentError(`ids: expected ${n}, got ${ids.length}`);
  return {
    size: n,
    async *batches(options: BatchOptions) {
      for (const chunk of order(n, options)) {
        const idx = tf.tensor1d(chunk, 'int32');
        const batch: PointwiseBatch = {
          ids: chunk.map((i) => ids[i] as string),
          latents: tf.gather(data.latents, idx),
          labels: tf.gather(data.labels, idx),
          conditioning: gatherConditioning(data.conditioning, idx),
        };
        idx.dispose();
        yield batch;
      }
    },
  };
}

/** (better, worse) pairs held as tensors: win and lose [N, F, H, W, C], conditioning with batch N. */
export function tensorPairwiseSource(data: {
  ids?: readonly (readonly [string, string])[];
  win: LatentVideo;
  lose: LatentVideo;
  conditioning: Conditioning;
}): PreferenceSource<PairwiseBatch> {
  assertLatentVideo('win', data.win);
  assertLatentVideo('lose', data.lose);
  const n = data.win.shape[0];
  if (data.lose.shape.some((d, i) => d !== data.win.shape[i])) {
    throw new InvalidArgumentError(
      `lose: expected the shape of win [${data.win.shape.join(', ')}], got [${data.lose.shape.join(', ')}]`,
    );
  }
  const ids = data.ids ?? Array.from({ length: n }, (_, i) => [`${i}-win`, `${i}-lose`] as const);
  return {
    size: n,
    async *batches(options: BatchOptions) {
      for (const chunk of order(n, options)) {
        const idx = tf.tensor1d(chunk, 'int32');
        const batch: PairwiseBatch = {
          ids: chunk.map((i) => ids[i] as readonly [string, string]),
          win: tf.gather(data.win, idx),
          lose: tf.gather(data.lose, idx),
          conditioning: gatherConditioning(data.conditioning, idx),
        };
        idx.dispose();
        yield batch;
      }
    },
  };
}
