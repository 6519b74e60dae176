/**
 * The one check every entry point that reads timesteps runs (the DiT, feature backbones, reward models,
 * the sampling loop): the forms a caller may pass, one value per batch element, each in
 * [0, numTrainTimesteps], and a guard against the commonest mix-up, a sigma where a timestep is meant.
 * A model that reads sigma 0.5 as timestep 0.5 runs without complaint and answers for an almost clean
 * latent, so the mistake only shows much later as a bad sample or a reward that learned nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from './errors.js';
import type { Timestep, TimestepOptions } from './types.js';

export interface ValidateTimestepsOptions extends TimestepOptions {
  /** The largest timestep value (default 1000, the models' training horizon). */
  numTrainTimesteps?: number;
}

/** How many values an error message lists before it shortens the list. */
const SHOWN = 8;

function list(values: readonly number[]): string {
  const shown = values.slice(0, SHOWN).map((v) => String(v));
  return values.length > SHOWN
    ? `[${shown.join(', ')}, ... (${values.length} values)]`
    : `[${shown.join(', ')}]`;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (x instanceof tf.Tensor) return `a ${x.dtype} tensor ${formatShape(x.shape)}`;
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  if (typeof x === 'object') return `an object (${Object.prototype.toString.call(x)})`;
  return `a ${typeof x} (${String(x)})`;
}

/**
 * The values of `timesteps` as numbers, or undefined when the form is not one we accept. A single
 * number (or a scalar tensor) is one timestep for the whole batch, as `pruneByReward` and the
 * schedulers' `addNoise` take one value for all.
 */
function valuesOf(what: string, timesteps: unknown, batch: number): number[] | undefined {
  if (typeof timesteps === 'number') return new Array<number>(batch).fill(timesteps);
  if (Array.isArray(timesteps)) return timesteps as number[];
  if (ArrayBuffer.isView(timesteps) && !(timesteps instanceof DataView)) {
    // BigInt64Array and friends hold bigints; the per-value check below names them.
    return Array.from(timesteps as unknown as ArrayLike<number>);
  }
  if (timesteps instanceof tf.Tensor) {
    if (timesteps.rank > 1) {
      throw new InvalidArgumentError(
        `${what}: expected a 1-D tensor of ${batch} timesteps (one per batch element), got ${describe(timesteps)}`,
      );
    }
    if (timesteps.dtype !== 'float32' && timesteps.dtype !== 'int32') {
      throw new InvalidArgumentError(
        `${what}: expected a float32 or int32 tensor of timesteps, got ${describe(timesteps)}`,
      );
    }
    // One small read: the models embed timesteps from JS numbers (Wan computes the sinusoid in float64).
    const data = Array.from(timesteps.dataSync());
    return timesteps.rank === 0 ? new Array<number>(batch).fill(data[0] as number) : data;
  }
  return undefined;
}

/**
 * Checks timesteps for a batch of `batch` and returns them as a new array of `batch` numbers.
 *
 * Accepts an array of numbers, a typed array (Float32Array, Int32Array, ...), a float32/int32 tfjs
 * tensor of shape [batch] (read once from the device), or one number (or scalar tensor) for the whole
 * batch. Every value must be finite and within [0, numTrainTimesteps].
 *
 * A batch whose every value is below 1, and not all exactly 0, is refused as sigmas passed for
 * timesteps (timestep = sigma * 1000; a clean latent is timestep 0, which is allowed). Pass
 * `{ allowSmallTimesteps: true }` for the rare run that really reads timesteps in (0, 1), such as the
 * tail of a schedule of more than 1000 untruncated steps.
 *
 * @throws InvalidArgumentError naming `what`, the expected batch size or range, and what arrived.
 */
export function validateTimesteps(
  what: string,
  timesteps: unknown,
  batch: number,
  options: ValidateTimestepsOptions = {},
): Timestep[] {
  if (!Number.isInteger(batch) || batch < 0) {
    throw new InvalidArgumentError(
      `${what}: the batch size must be a non-negative integer, got ${String(batch)}`,
    );
  }
  const max = options.numTrainTimesteps ?? 1000;
  const values = valuesOf(what, timesteps, batch);
  if (values === undefined) {
    throw new InvalidArgumentError(
      `${what}: expected ${batch} timesteps (one per batch element) as an array, a typed array or a 1-D tensor, or one number for all; got ${describe(timesteps)}`,
    );
  }
  if (values.length !== batch) {
    throw new InvalidArgumentError(
      `${what}: expected ${batch} timesteps (one per batch element), got ${values.length} (${describe(timesteps)})`,
    );
  }
  values.forEach((t, i) => {
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > max) {
      throw new InvalidArgumentError(
        `${what}[${i}]: expected a timestep in [0, ${max}], got ${typeof t === 'number' ? String(t) : describe(t)}`,
      );
    }
  });
  if (
    !options.allowSmallTimesteps &&
    values.length > 0 &&
    values.every((t) => t < 1) &&
    values.some((t) => t !== 0)
  ) {
    throw new InvalidArgumentError(
      `${what}: timesteps look like sigmas: got ${list(values)}; timesteps are sigma * ${max} in [0, ${max}] ` +
        `(sigmaToTimestep converts). If these really are timesteps below 1, pass { allowSmallTimesteps: true }`,
    );
  }
  return [...values] as Timestep[];
}
