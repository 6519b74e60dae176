/**
 * The denoising loop, readable top to bottom: for each step index i of a schedule, the model's
 * (guided) velocity at timestep t_i, then one scheduler step from sigma_i to sigma_{i+1}. Works with any
 * VelocityModel and any @prfl/tensor Scheduler; every step runs in its own tidy scope, and the loop
 * disposes each intermediate sample and solver state, so repeated sampling leaves nothing behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertFiniteInRange,
  type Conditioning,
  formatShape,
  type Generator,
  InvalidArgumentError,
  type LatentVideo,
  type Schedule,
  type Scheduler,
  type Sigma,
  stepIndex,
  type Timestep,
  type VelocityModel,
  validateTimesteps,
} from '@prfl/tensor';
import { batchConditioning, guidedVelocity } from './guidance.js';

/** Reported after each step. */
export interface SamplingProgress {
  /** Steps done in this call, 1-based. */
  step: number;
  /** Steps this call runs. */
  total: number;
  /** The schedule index of the step just done. */
  index: number;
  /** The timestep value the model read. */
  timestep: Timestep;
  /** The noise level of the sample now (schedule.sigmas[index + 1]). */
  sigma: Sigma;
  elapsedMs: number;
  /**
   * The current sample [B, F, H, W, C], borrowed: valid during the callback only (clone it to keep it),
   * e.g. to score it with a latent reward model and stop bad seeds early.
   */
  latent: LatentVideo;
}

export interface SampleLatentsOptions<S> {
  model: VelocityModel;
  scheduler: Scheduler<S>;
  schedule: Schedule;
  /** The sample at schedule.sigmas[startIndex]: pure noise when sampling from scratch. Not disposed. */
  initial: LatentVideo;
  conditioning: Conditioning;
  /** The unconditional branch (negative prompt); needed for guidance (scale != 1). */
  negative?: Conditioning;
  /** g in v = v_uncond + g (v_cond - v_uncond); default 1 (no guidance, one forward per step). */
  guidanceScale?: number;
  /** First step index to run (default 0). */
  startIndex?: number;
  /** Stop before this step index (default schedule.numSteps): a rollout to step k (PRFL, docs/method.md §5). */
  endIndex?: number;
  /**
   * Fresh standard normal noise for stochastic samplers (DDPM; DDIM with eta > 0), drawn from this
   * generator (with `stepNoise`). Default: `stepNoise` when the scheduler is DDPMScheduler.
   */
  generator?: Generator;
  stepNoise?: boolean;
  /** Extra arguments of every scheduler step (e.g. DDIM's `eta`). */
  stepArgs?: Record<string, unknown>;
  /** Return the solver state after the last step instead of disposing it (to continue, e.g. under a tape). */
  keepState?: boolean;
  /**
   * Accept a schedule whose timesteps are all below 1 (see `validateTimesteps`; default false: such a
   * schedule holds sigmas where timesteps belong). Also passed to the model at every step.
   */
  allowSmallTimesteps?: boolean;
  onProgress?: (p: SamplingProgress) => void | Promise<void>;
}

export interface SampleLatentsResult<S> {
  /** The sample at schedule.sigmas[endIndex]. */
  latents: LatentVideo;
  /** With keepState: the solver state for step endIndex (dispose with scheduler.disposeState). */
  state?: S;
}

/**
 * Runs steps startIndex..endIndex-1 of `schedule` from `initial`.
 *
 * @throws InvalidArgumentError for a latent that is not [B, F, H, W, model.latentChannels], a step range
 *   outside the schedule, a schedule whose timesteps are not one per step in [0, 1000] (or look like
 *   sigmas), a negative or non-finite guidance scale, or guidance without `negative`.
 */
export async function sampleLatents<S>(options: SampleLatentsOptions<S>): Promise<SampleLatentsResult<S>> {
  const { model, scheduler, schedule, initial, conditioning, negative } = options;
  const scale = options.guidanceScale ?? 1;
  assertFiniteInRange('guidanceScale', scale, 0);
  if (!(initial instanceof tf.Tensor) || initial.rank !== 5 || initial.shape[4] !== model.latentChannels) {
    throw new InvalidArgumentError(
      `initial latents: expected [B, F, H, W, ${model.latentChannels}] (the model's latentChannels), got ${initial instanceof tf.Tensor ? formatShape(initial.shape) : typeof initial}`,
    );
  }
  if (scale !== 1 && negative === undefined) {
    throw new InvalidArgumentError(
      `guidanceScale ${scale} needs the unconditional branch (options.negative)`,
    );
  }
  const n = schedule.numSteps;
  const start = options.startIndex ?? 0;
  const end = options.endIndex ?? n;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
    throw new InvalidArgumentError(
      `step range: expected integers 0 <= startIndex <= endIndex <= ${n}, got ${start}..${end}`,
    );
  }
  // The schedule is where the loop's timesteps enter: check them all before the first forward pass.
  const timestepOptions = { allowSmallTimesteps: options.allowSmallTimesteps ?? false };
  if (!Array.isArray(schedule.timesteps) || schedule.timesteps.length !== n) {
    throw new InvalidArgumentError(
      `schedule.timesteps: expected numSteps = ${n} timesteps (one per step), got ${Array.isArray(schedule.timesteps) ? schedule.timesteps.length : typeof schedule.timesteps}`,
    );
  }
  const timesteps = validateTimesteps('schedule.timesteps', schedule.timesteps, n, timestepOptions);
  const b = initial.shape[0];
  const stepNoise = options.stepNoise ?? scheduler.name === 'DDPMScheduler';
  if (stepNoise && options.generator === undefined) {
    throw new InvalidArgumentError(`${scheduler.name} needs fresh noise every step: pass options.generator`);
  }
  const batched =
    scale !== 1 && negative !== undefined ? batchConditioning(conditioning, negative) : undefined;
  let state = scheduler.initialState(schedule);
  let x: LatentVideo = initial;
  const t0 = performance.now();
  try {
    for (let i = start; i < end; i++) {
      const t = timesteps[i] as Timestep;
      const v = tf.tidy(() =>
        guidedVelocity(
          model,
          x,
          new Array<Timestep>(b).fill(t),
          conditioning,
          batched,
          scale,
          timestepOptions,
        ),
      );
      const noise = stepNoise ? options.generator?.normal(x.shape) : undefined;
      let next: { sample: LatentVideo; state: S };
      try {
        next = scheduler.step({
          ...(options.stepArgs ?? {}),
          schedule,
          state,
          index: stepIndex(i, n),
          sample: x,
          modelOutput: v,
          ...(noise !== undefined ? { noise } : {}),
        });
      } finally {
        v.dispose();
        noise?.dispose();
      }
      if (x !== initial) x.dispose();
      scheduler.disposeState(state);
      x = next.sample;
      state = next.state;
      await options.onProgress?.({
        step: i - start + 1,
        total: end - start,
        index: i,
        timestep: t,
        sigma: schedule.sigmas[i + 1] as Sigma,
        elapsedMs: performance.now() - t0,
        latent: x,
      });
    }
  } catch (e) {
    if (x !== initial) x.dispose();
    scheduler.disposeState(state);
    throw e;
  } finally {
    if (batched !== undefined) tf.dispose(batched as unknown as tf.TensorContainer);
  }
  const latents = x === initial ? tf.clone(initial) : x;
  if (options.keepState) return { latents, state };
  scheduler.disposeState(state);
  return { latents };
}
