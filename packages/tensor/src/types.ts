/**
 * The shared interface of every prfl package (docs/tensor.md): the three time-like
 * quantities as distinct branded numbers, the tensor layouts, conditioning, and the contracts a model,
 * a backbone, a scheduler, a reward model and a preference source implement. Packages talk to each
 * other only through these types.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from './errors.js';

declare const brand: unique symbol;
/**
 * A number type the compiler keeps apart from other numbers and from other brands: `Sigma`, `Timestep` and
 * `StepIndex` are `Branded<number, ...>`, made only by their validating constructors (`sigma`, `timestep`,
 * `stepIndex`), so one cannot be passed where another is expected.
 */
export type Branded<T, B extends string> = T & { readonly [brand]: B };

/**
 * Noise level of rectified flow, in [0, 1]: 1 is pure noise, 0 is data; x_sigma = (1 - sigma) x0 + sigma eps
 * (docs/method.md §2). DDPM-family schedulers use their own noise level under the same type.
 */
export type Sigma = Branded<number, 'Sigma'>;
/** The number the DiT's time embedding reads, in [0, 1000] (sigma * 1000; the reference truncates it). */
export type Timestep = Branded<number, 'Timestep'>;
/** A position in a sampling schedule, an integer 0..N-1. Never a timestep: mixing the two is a known ReFL bug. */
export type StepIndex = Branded<number, 'StepIndex'>;

/** Validates and brands a sigma. */
export function sigma(value: number): Sigma {
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidArgumentError(`sigma: expected a number in [0, 1], got ${String(value)}`);
  }
  return value as Sigma;
}

/** Validates and brands a timestep value. */
export function timestep(value: number, numTrainTimesteps = 1000): Timestep {
  if (!Number.isFinite(value) || value < 0 || value > numTrainTimesteps) {
    throw new InvalidArgumentError(
      `timestep: expected a number in [0, ${numTrainTimesteps}], got ${String(value)}`,
    );
  }
  return value as Timestep;
}

/** Validates and brands a step index; with `numSteps`, also checks it is below it. */
export function stepIndex(value: number, numSteps?: number): StepIndex {
  if (!Number.isInteger(value) || value < 0 || (numSteps !== undefined && value >= numSteps)) {
    const range = numSteps === undefined ? 'a non-negative integer' : `an integer in [0, ${numSteps - 1}]`;
    throw new InvalidArgumentError(`step index: expected ${range}, got ${String(value)}`);
  }
  return value as StepIndex;
}

/**
 * sigma -> the timestep value the DiT reads: sigma * numTrainTimesteps. With `truncate` (what the
 * reference's FlowMatchDiscrete grid does) the value is cut to an integer.
 */
export function sigmaToTimestep(
  s: Sigma,
  options: { truncate?: boolean; numTrainTimesteps?: number } = {},
): Timestep {
  const n = options.numTrainTimesteps ?? 1000;
  const t = s * n;
  return (options.truncate ? Math.trunc(t) : t) as Timestep;
}

/** timestep value -> sigma (t / numTrainTimesteps). */
export function timestepToSigma(t: Timestep, numTrainTimesteps = 1000): Sigma {
  return sigma(t / numTrainTimesteps);
}

/**
 * Timesteps as the models take them: one value per batch element, as an array of branded timesteps, a
 * typed array or a 1-D tfjs tensor (read once from the device), or one timestep for the whole batch.
 * Every model checks them with `validateTimesteps`: values in [0, 1000], one per batch element, and a
 * batch that looks like sigmas (all below 1, not all 0) is refused unless `allowSmallTimesteps`.
 */
export type TimestepsLike =
  | readonly Timestep[]
  | Timestep
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | tf.Tensor1D;

/** Per-call options of anything that reads timesteps. */
export interface TimestepOptions {
  /**
   * Accept a batch whose every timestep is below 1 (and not all 0). Off by default: such a batch is
   * almost always sigmas passed where timesteps (sigma * 1000) are meant.
   */
  allowSmallTimesteps?: boolean;
}

/**
 * Video latents, channels last: [B, F, H, W, C] (batch, latent frames, height, width, channels); tfjs's
 * native layout for conv3d. PyTorch's [B, C, F, H, W] (or one video's [C, F, H, W]) is converted at the
 * boundary with `latentsFromTorch` / `latentsToTorch` (tensors) or `latentArrayFromTorch` /
 * `latentArrayToTorch` (flat typed arrays).
 */
export type LatentVideo = tf.Tensor5D;
/** Token sequences [B, N, D]. */
export type TokenSequence = tf.Tensor3D;

/** What a generator or reward model is conditioned on. Never raw strings below the pipeline level. */
export interface Conditioning {
  /** Text embeddings [B, L, Dtext]. */
  text: tf.Tensor3D;
  /** Optional [B, L] mask, 1 for real tokens and 0 for padding. */
  textMask?: tf.Tensor2D;
  /**
   * Image-to-video: the first-frame condition concatenated to the noisy latent on channels (Wan2.1:
   * a 4-channel first-frame mask + the 16-channel first-frame latent), [B, F, H, W, Ccond], and optional
   * image tokens prepended to the text context, [B, Limg, Dimg].
   */
  image?: { latent: LatentVideo; tokens?: tf.Tensor3D };
}

/** A named trainable thing: stable names are what checkpoints (safetensors) are keyed by. */
export interface Trainable {
  /** Every variable under its stable checkpoint name; `variable.trainable` says which ones train. */
  namedVariables(): ReadonlyMap<string, tf.Variable>;
}

/** Predicts the flow-matching velocity v = eps - x0 (docs/method.md §2). */
export interface VelocityModel extends Trainable {
  /** Channels of the latents it reads and predicts. */
  readonly latentChannels: number;
  /**
   * v for x_sigma [B, F, H, W, C] at one timestep per batch element (or one for all). Differentiable in x
   * and the variables.
   */
  predictVelocity(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options?: TimestepOptions,
  ): LatentVideo;
}

/** A transformer whose intermediate token features can be read: what PAVRM is built on (docs/method.md §4). */
export interface FeatureBackbone extends Trainable {
  /** D, the width of the features. */
  readonly featureDim: number;
  /** How many blocks `features` can run. */
  readonly numBlocks: number;
  /** The residual stream after the first `blocks` blocks (default: all), [B, N, D], no final norm. */
  features(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    blocks?: number,
    options?: TimestepOptions,
  ): TokenSequence;
}

/** The timesteps and noise levels of one sampling run of N steps. */
export interface Schedule {
  readonly numSteps: number;
  /** N timestep values, the one the model reads at each step index. */
  readonly timesteps: readonly Timestep[];
  /** N + 1 noise levels: sigmas[i] is the level of the sample entering step i; sigmas[N] the final one. */
  readonly sigmas: readonly Sigma[];
}

/** The result of one scheduler step: the new sample (same type as the input) and the next solver state. */
export interface SchedulerStepResult<S, T extends tf.Tensor = tf.Tensor> {
  sample: T;
  state: S;
}

/** The arguments of one scheduler step. */
export interface SchedulerStepArgs<S, T extends tf.Tensor = tf.Tensor> {
  schedule: Schedule;
  state: S;
  index: StepIndex;
  sample: T;
  modelOutput: T;
  /** Fresh standard normal noise of the sample's shape, for stochastic samplers (DDPM, DDIM with eta > 0). */
  noise?: tf.Tensor;
}

/**
 * A sampler as a set of pure functions: the state (e.g. UniPC's history of model outputs) is explicit,
 * so a single step can run inside a gradient tape and the denoising loop can be written by hand.
 * For DDPM-family samplers, `Sigma` is their noise level sqrt(1 - alpha_bar).
 */
export interface Scheduler<S = unknown> {
  readonly name: string;
  readonly numTrainTimesteps: number;
  /** The schedule for `numSteps` sampling steps; options are the scheduler's own (e.g. Wan UniPC's shift). */
  schedule(numSteps: number, options?: object): Schedule;
  /** The solver state before step 0. */
  initialState(schedule: Schedule): S;
  /** Noises clean samples to the level of a step of the schedule (per batch element or one for all). */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, sigmas: Sigma | readonly Sigma[]): tf.Tensor;
  /** One step from `schedule.sigmas[index]` to `schedule.sigmas[index + 1]`; built from tf ops only. */
  step<T extends tf.Tensor>(args: SchedulerStepArgs<S, T>): SchedulerStepResult<S, T>;
  /** The clean estimate of `sample` at step `index` (x0_hat = x - sigma v for flow models), differentiable. */
  predictOriginal<T extends tf.Tensor>(args: {
    schedule: Schedule;
    index: StepIndex;
    sample: T;
    modelOutput: T;
  }): T;
  /** Releases tensors held by a state (history of model outputs). */
  disposeState(state: S): void;
  /** The diffusers-compatible JSON config. */
  toConfig(): Record<string, unknown>;
}

/** Scores noisy latents: one logit per batch element; reward probability = sigmoid(logit) (docs/method.md §4). */
export interface LatentRewardModel extends Trainable {
  score(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options?: TimestepOptions,
  ): tf.Tensor1D;
}

/** A batch of labelled videos (pointwise BCE training). */
export interface PointwiseBatch {
  ids: readonly string[];
  latents: LatentVideo;
  conditioning: Conditioning;
  /** [B] in {0, 1}: 1 = good motion quality. */
  labels: tf.Tensor1D;
}

/** A batch of (better, worse) pairs sharing a prompt (Bradley-Terry training). */
export interface PairwiseBatch {
  ids: readonly (readonly [string, string])[];
  win: LatentVideo;
  lose: LatentVideo;
  /** The prompt of the pair (of the winner, when pairs cross prompts). */
  conditioning: Conditioning;
  /** The loser's own conditioning, for pairs drawn across prompts; absent when both share `conditioning`. */
  loseConditioning?: Conditioning;
}

/** Options of one pass over a preference source. */
export interface BatchOptions {
  batchSize: number;
  /** Shuffling is a function of (seed, epoch): the same pair gives the same order everywhere. */
  seed: number;
  epoch: number;
  shuffle?: boolean;
  /** Drop a last, smaller batch (default false: it is kept). */
  dropLast?: boolean;
}

/** Where preference data comes from: batches of latents, conditioning and labels (or pairs). */
export interface PreferenceSource<B extends PointwiseBatch | PairwiseBatch = PointwiseBatch | PairwiseBatch> {
  readonly size: number;
  batches(options: BatchOptions): AsyncIterable<B>;
}
