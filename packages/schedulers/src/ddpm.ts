/**
 * DDPM ancestral sampling (Ho et al. 2020), as diffusers' DDPMScheduler: the posterior mean of x_{t'}
 * given x_t and the x0 prediction (eq. 7 of the paper), plus the posterior noise with the configured
 * variance, for t' = t - T // N (diffusers' previous_timestep; with "linspace" spacing not always the next
 * timestep, see ddim.ts). Needs one standard normal noise tensor per step with t > 0.
 */
import type { Schedule, Scheduler, Sigma, StepIndex } from '@prfl/tensor';
import { InvalidArgumentError } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { BetaSchedule, PredictionType, TimestepSpacing } from './beta-schedules.js';
import {
  alphasCumprod,
  BETA_SCHEDULES,
  discreteTimesteps,
  PREDICTION_TYPES,
  TIMESTEP_SPACINGS,
} from './beta-schedules.js';
import type { SchedulerSchedule, StateHeader } from './common.js';
import {
  asSigmas,
  asTimesteps,
  checkAddNoise,
  checkIndex,
  checkNoise,
  checkNumSteps,
  checkScheduleOwner,
  checkStepPosition,
  checkStepTensors,
  makeScheduleHeader,
  perBatch,
  show,
  weightedSum,
} from './common.js';
import type { ConfigSpec } from './config.js';
import {
  boolean,
  finite,
  integer,
  nullableNumberList,
  oneOf,
  only,
  readConfig,
  writeConfig,
} from './config.js';

const CLASS_NAME = 'DDPMScheduler';

/** Posterior variances diffusers' DDPMScheduler offers that need no learned variance. */
export type DDPMVarianceType = 'fixed_small' | 'fixed_small_log' | 'fixed_large';

/** The config keys of diffusers' DDPMScheduler. */
export interface DDPMConfig {
  readonly num_train_timesteps: number;
  readonly beta_start: number;
  readonly beta_end: number;
  readonly beta_schedule: BetaSchedule;
  readonly trained_betas: readonly number[] | null;
  readonly variance_type: DDPMVarianceType;
  readonly clip_sample: boolean;
  readonly prediction_type: PredictionType;
  readonly thresholding: boolean;
  readonly dynamic_thresholding_ratio: number;
  readonly clip_sample_range: number;
  readonly sample_max_value: number;
  readonly timestep_spacing: TimestepSpacing;
  readonly steps_offset: number;
  readonly rescale_betas_zero_snr: boolean;
}

const SPEC: ConfigSpec<DDPMConfig> = {
  num_train_timesteps: integer(1000, 1),
  beta_start: finite(0.0001, 0, 1, true),
  beta_end: finite(0.02, 0, 1, true),
  beta_schedule: oneOf('linear', BETA_SCHEDULES),
  trained_betas: nullableNumberList(),
  // learned variances need a model that predicts them; fixed_large_log takes sqrt(log(beta)) in diffusers.
  variance_type: oneOf('fixed_small', ['fixed_small', 'fixed_small_log', 'fixed_large']),
  clip_sample: boolean(true),
  prediction_type: oneOf('epsilon', PREDICTION_TYPES),
  thresholding: only(false, 'dynamic thresholding is not implemented'),
  dynamic_thresholding_ratio: finite(0.995, 0, 1),
  clip_sample_range: finite(1.0, 0, Infinity, true),
  sample_max_value: finite(1.0, 0, Infinity, true),
  timestep_spacing: oneOf('leading', TIMESTEP_SPACINGS),
  steps_offset: integer(0, 0),
  rescale_betas_zero_snr: boolean(false),
};

export interface DDPMSchedule extends SchedulerSchedule {
  /** alpha_bar at each step's timestep. */
  readonly alphaProd: readonly number[];
  /** alpha_bar of the level each step lands on (t - T // N, or 1 after t = 0). */
  readonly alphaProdPrev: readonly number[];
}

/** DDPM keeps no history; the state only says which schedule and step it belongs to. */
export interface DDPMState extends StateHeader {}

export interface DDPMStepArgs<T extends tf.Tensor = tf.Tensor> {
  schedule: Schedule;
  state: DDPMState;
  index: StepIndex;
  sample: T;
  modelOutput: T;
  /** Standard normal noise of the sample's shape; required on every step whose timestep is > 0. */
  noise?: tf.Tensor;
}

export class DDPMScheduler implements Scheduler<DDPMState> {
  readonly name = CLASS_NAME;
  readonly config: DDPMConfig;
  readonly numTrainTimesteps: number;
  /** alpha_bar_t for t = 0..T-1 (double precision). */
  readonly alphasCumprod: readonly number[];
  private readonly owner: string;

  constructor(config: Partial<DDPMConfig> = {}) {
    this.config = readConfig([CLASS_NAME], SPEC, config);
    this.numTrainTimesteps = this.config.num_train_timesteps;
    this.alphasCumprod = Object.freeze(alphasCumprod(`${CLASS_NAME} config`, this.config));
    this.owner = `${CLASS_NAME}${JSON.stringify(this.config)}`;
  }

  static fromConfig(json: Record<string, unknown>): DDPMScheduler {
    return new DDPMScheduler(json as Partial<DDPMConfig>);
  }

  toConfig(): Record<string, unknown> {
    return writeConfig(CLASS_NAME, this.config);
  }

  /**
   * N steps at the config's timestep spacing (N = num_train_timesteps is the original 1000-step chain);
   * sigmas[i] = sqrt(1 - alpha_bar) of step i's timestep, sigmas[N] = 0.
   * @throws InvalidArgumentError when numSteps is not an integer in [1, num_train_timesteps].
   */
  schedule(numSteps: number): DDPMSchedule {
    const n = checkNumSteps(`${CLASS_NAME}.schedule`, numSteps);
    const T = this.numTrainTimesteps;
    const timesteps = discreteTimesteps(
      `${CLASS_NAME}.schedule`,
      T,
      n,
      this.config.timestep_spacing,
      this.config.steps_offset,
    );
    const ratio = Math.floor(T / n);
    const alphaProd = timesteps.map((t) => this.alphasCumprod[t] as number);
    const alphaProdPrev = timesteps.map((t) =>
      t - ratio >= 0 ? (this.alphasCumprod[t - ratio] as number) : 1,
    );
    const sigmas = [...alphaProd, alphaProdPrev[n - 1] as number].map((ab) => Math.sqrt(Math.max(0, 1 - ab)));
    return Object.freeze({
      ...makeScheduleHeader(CLASS_NAME, this.config, n),
      timesteps: asTimesteps(timesteps),
      sigmas: asSigmas(sigmas),
      alphaProd: Object.freeze(alphaProd),
      alphaProdPrev: Object.freeze(alphaProdPrev),
    });
  }

  initialState(schedule: Schedule): DDPMState {
    const s = checkScheduleOwner(CLASS_NAME, this.owner, schedule);
    return Object.freeze({
      scheduler: CLASS_NAME,
      scheduleKey: s.key,
      scheduleLabel: s.label,
      nextIndex: null,
    });
  }

  /**
   * One ancestral step. A pure function of its arguments (the randomness comes in as `noise`),
   * differentiable in sample and modelOutput (except where clip_sample clips).
   */
  step<T extends tf.Tensor>(args: DDPMStepArgs<T>): { sample: T; state: DDPMState } {
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule) as DDPMSchedule;
    const i = checkStepPosition(CLASS_NAME, schedule, args.state, args.index);
    const shape = checkStepTensors(CLASS_NAME, args.sample, args.modelOutput);
    const t = schedule.timesteps[i] as number;
    const ab = schedule.alphaProd[i] as number;
    const abPrev = schedule.alphaProdPrev[i] as number;
    const currentAlpha = ab / abPrev;
    const currentBeta = 1 - currentAlpha;
    let std = 0;
    if (t > 0) {
      const smallVariance = Math.max(((1 - abPrev) / (1 - ab)) * currentBeta, 1e-20);
      std = Math.sqrt(this.config.variance_type === 'fixed_large' ? currentBeta : smallVariance);
    }
    const noise = t > 0 ? checkNoise(CLASS_NAME, args.noise, shape) : undefined;
    const sa = Math.sqrt(ab);
    const sb = Math.sqrt(1 - ab);
    const cfg = this.config;

    const sample = tf.tidy(() => {
      const x = args.sample;
      const out = args.modelOutput;
      let x0: tf.Tensor =
        cfg.prediction_type === 'epsilon'
          ? weightedSum([
              [x, 1 / sa],
              [out, -sb / sa],
            ])
          : cfg.prediction_type === 'sample'
            ? out
            : weightedSum([
                [x, sa],
                [out, -sb],
              ]);
      if (cfg.clip_sample) x0 = tf.clipByValue(x0, -cfg.clip_sample_range, cfg.clip_sample_range);
      // Posterior mean: sqrt(abar_prev) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t) x_t.
      const terms: [tf.Tensor, number][] = [
        [x0, (Math.sqrt(abPrev) * currentBeta) / (1 - ab)],
        [x, (Math.sqrt(currentAlpha) * (1 - abPrev)) / (1 - ab)],
      ];
      if (noise) terms.push([noise, std]);
      return weightedSum(terms);
    });
    const state: DDPMState = Object.freeze({
      scheduler: CLASS_NAME,
      scheduleKey: schedule.key,
      scheduleLabel: schedule.label,
      nextIndex: i + 1,
    });
    return { sample: sample as T, state };
  }

  /**
   * The clean-sample estimate x0_hat of a sample at step `index` from the model output (by prediction_type,
   * clipped as the step clips it: diffusers' pred_original_sample). A new tensor, differentiable.
   */
  predictOriginal<T extends tf.Tensor>(args: {
    schedule: Schedule;
    index: StepIndex;
    sample: T;
    modelOutput: T;
  }): T {
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule) as DDPMSchedule;
    const i = checkIndex(`${CLASS_NAME}.predictOriginal`, schedule, args.index);
    checkStepTensors(CLASS_NAME, args.sample, args.modelOutput);
    const ab = schedule.alphaProd[i] as number;
    const sa = Math.sqrt(ab);
    const sb = Math.sqrt(1 - ab);
    const cfg = this.config;
    return tf.tidy(() => {
      const x0 =
        cfg.prediction_type === 'epsilon'
          ? weightedSum([
              [args.sample, 1 / sa],
              [args.modelOutput, -sb / sa],
            ])
          : cfg.prediction_type === 'sample'
            ? tf.clone(args.modelOutput)
            : weightedSum([
                [args.sample, sa],
                [args.modelOutput, -sb],
              ]);
      return cfg.clip_sample ? tf.clipByValue(x0, -cfg.clip_sample_range, cfg.clip_sample_range) : x0;
    }) as T;
  }

  /** x_t = sqrt(1 - sigma^2) x0 + sigma eps, with sigma = sqrt(1 - alpha_bar) (one, or one per batch element). */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, sigmas: Sigma | readonly Sigma[]): tf.Tensor {
    const a = checkAddNoise(CLASS_NAME, x0, noise, sigmas);
    const signal =
      typeof a.sigmas === 'number' ? Math.sqrt(1 - a.sigmas ** 2) : a.sigmas.map((s) => Math.sqrt(1 - s * s));
    return tf.tidy(() =>
      tf.add(tf.mul(perBatch(signal, a.x0.shape), a.x0), tf.mul(perBatch(a.sigmas, a.x0.shape), a.noise)),
    );
  }

  /** The noise level of a training timestep: sqrt(1 - alpha_bar_t). */
  sigmaAt(timestep: number): Sigma {
    const ab = this.alphasCumprod[timestep];
    if (!Number.isInteger(timestep) || ab === undefined) {
      throw new InvalidArgumentError(
        `${CLASS_NAME}.sigmaAt: timestep: expected an integer in [0, ${this.numTrainTimesteps - 1}], got ${show(timestep)}`,
      );
    }
    return Math.sqrt(1 - ab) as Sigma;
  }

  /** Nothing to release: DDPM keeps no tensors. */
  disposeState(_state: DDPMState): void {}
}
