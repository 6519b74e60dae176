/**
 * Input checks shared by the reward models and the trainer. Errors name the argument, what was
 * expected and what arrived (STYLE.md); "Raise concise errors rather than silently correct bad input".
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, type Timestep, validateTimesteps } from '@prfl/tensor';

/**
 * NaN/Inf check: one implementation for every prfl model, in @prfl/tensor (the DiT and the VAE use it
 * too); re-exported here, where it was first written.
 */
export { assertFiniteTensor } from '@prfl/tensor';

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
 * Throws unless `timesteps` is an array of one timestep per batch element in [0, 1000] that does not
 * look like sigmas: @prfl/tensor's `validateTimesteps` (the check every model runs) for arrays only.
 *
 * @deprecated Use `validateTimesteps` of @prfl/tensor, which also takes typed arrays, tensors and one
 *   number for the batch, and returns the values.
 */
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
  validateTimesteps(what, timesteps, batch);
}

/** Throws unless `labels` is a [B] tensor of zeros and ones. One device read. */
export function assertBinaryLabels(
  what: string,
  labels: unknown,
  batch: number,
): asserts labels is tf.Tensor1D {
  checkLabels(what, labels, batch, '0/1 labels', 'a label 0 or 1', (v) => v === 0 || v === 1);
}

/**
 * Throws unless `labels` is a [B] tensor of training targets in [0, 1]: hard labels 0/1, or soft ones (the
 * probability that the video is good: an annotators' agreement rate, an oracle's calibrated score). BCE
 * takes either. One device read.
 */
export function assertLabelTargets(
  what: string,
  labels: unknown,
  batch: number,
): asserts labels is tf.Tensor1D {
  checkLabels(
    what,
    labels,
    batch,
    'labels in [0, 1]',
    'a label in [0, 1] (0/1, or the probability of good)',
    (v) => v >= 0 && v <= 1,
  );
}

/**
 * Throws unless `labels` is a [batch] tensor whose every value passes `ok`; `kind` and `one` name what is
 * expected of the tensor and of one value.
 */
function checkLabels(
  what: string,
  labels: unknown,
  batch: number,
  kind: string,
  one: string,
  ok: (v: number) => boolean,
): void {
  if (!(labels instanceof tf.Tensor)) {
    throw new InvalidArgumentError(
      `${what}: expected a [${batch}] tensor of ${kind}, got ${describe(labels)}`,
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
    if (!ok(v)) throw new InvalidArgumentError(`${what}[${i}]: expected ${one}, got ${String(v)}`);
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x instanceof tf.Tensor) return `a ${x.dtype} tensor ${formatShape(x.shape)}`;
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  return typeof x;
}
