/**
 * Input checks shared by the reward models and the trainer. Errors name the argument, what was
 * expected and what arrived (STYLE.md); "Raise concise errors rather than silently correct bad input".
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, type Timestep } from '@prfl/tensor';

/** Throws unless `x` is a rank-5 tensor [B, F, H, W, C] (channels last) with positive dimensions. */
export function assertLatentVideo(what: string, x: unknown, channels?: number): asserts x is tf.Tensor5D {
  if (!(x instanceof tf.Tensor)) {
    throw new InvalidArgumentError(
      `${what}: expected a latent video tensor [B, F, H, W, C], got ${describe(x)}`,
    );
  }
  if (x.rank !== 5) {
    throw new InvalidArgumentError(
      `${what}: expected a latent video [B, F, H, W, C] (rank 5, channels last), got rank ${x.rank} ${formatShape(x.shape)}`,
    );
  }
  if (x.shape.some((d: number) => d < 1)) {
    throw new InvalidArgumentError(`${what}: expected non-empty dimensions, got ${formatShape(x.shape)}`);
  }
  if (x.dtype !== 'float32') {
    throw new InvalidArgumentError(`${what}: expected float32, got ${x.dtype} ${formatShape(x.shape)}`);
  }
  if (channels !== undefined && x.shape[4] !== channels) {
    throw new InvalidArgumentError(
      `${what}: expected ${channels} channels (last axis), got ${formatShape(x.shape)}`,
    );
  }
}

/**
 * Throws when `t` holds NaN or ±Inf, saying how many and where the first one is. One small device read.
 */
export function assertFiniteTensor(what: string, t: tf.Tensor): void {
  const counts = tf.tidy(() => {
    const x = tf.cast(t, 'float32');
    const nan = tf.sum(tf.cast(tf.isNaN(x), 'float32'));
    const inf = tf.sum(tf.cast(tf.isInf(x), 'float32'));
    return tf.stack([nan, inf]);
  });
  const [nan, inf] = counts.dataSync() as Float32Array;
  counts.dispose();
  if ((nan as number) > 0 || (inf as number) > 0) {
    const values = t.dataSync();
    let first = -1;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i] as number)) {
        first = i;
        break;
      }
    }
    throw new InvalidArgumentError(
      `${what}: expected finite values, got ${nan} NaN and ${inf} Inf in a ${formatShape(t.shape)} tensor (first at flat index ${first}: ${String(values[first])})`,
    );
  }
}

/** Throws unless `timesteps` holds one finite value in [0, 1000] per batch element. */
export function assertTimesteps(
  what: string,
  timesteps: unknown,
  batch: number,
): asserts timesteps is readonly Timestep[] {
  if (!Array.isArray(timesteps)) {
    throw new InvalidArgumentError(
      `${what}: expected an array of ${batch} timestep values, got ${describe(timesteps)}`,
    );
  }
  if (timesteps.length !== batch) {
    throw new InvalidArgumentError(
      `${what}: expected one timestep per batch element (${batch}), got ${timesteps.length}`,
    );
  }
  timesteps.forEach((t, i) => {
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 1000) {
      throw new InvalidArgumentError(
        `${what}[${i}]: expected a timestep value in [0, 1000], got ${String(t)}`,
      );
    }
  });
}

/** Throws unless `labels` is a [B] tensor of zeros and ones. One device read. */
export function assertBinaryLabels(
  what: string,
  labels: unknown,
  batch: number,
): asserts labels is tf.Tensor1D {
  if (!(labels instanceof tf.Tensor)) {
    throw new InvalidArgumentError(
      `${what}: expected a [${batch}] tensor of 0/1 labels, got ${describe(labels)}`,
    );
  }
  if (labels.rank !== 1 || labels.shape[0] !== batch) {
    throw new InvalidArgumentError(
      `${what}: expected one label per batch element, shape [${batch}], got ${formatShape(labels.shape)}`,
    );
  }
  const values = labels.dataSync();
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v !== 0 && v !== 1) {
      throw new InvalidArgumentError(`${what}[${i}]: expected a label 0 or 1, got ${String(v)}`);
    }
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x instanceof tf.Tensor) return `a ${x.dtype} tensor ${formatShape(x.shape)}`;
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  return typeof x;
}
