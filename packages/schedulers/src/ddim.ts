/**
 * DDIM (Song et al. 2021), as diffusers' DDIMScheduler: with alpha_bar_t the cumulative product of
 * (1 - beta), step i goes from timestep t to t - T // N, predicting x0 and eps from the model output
 * ("epsilon", "v_prediction" or "sample") and re-noising x0 to the lower level; eta > 0 adds fresh noise
 * (eta = 1 is DDPM's posterior variance).
 *
 * schedule.sigmas[i] is the level of timesteps[i] (sigma = sqrt(1 - alpha_bar)) and sigmas[N] the final one.
 * As in diffusers, step i lands on t - T // N (schedule.alphaProdPrev[i]) even where the spacing's next
 * timestep differs ("linspace", or "trailing" with T not a multiple of N); with the default "leading"
 * spacing the two agree.
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

const CLASS_NAME = 'DDIMScheduler';

/** The config keys of diffusers' DDIMScheduler. */
export interface DDIMConfig {
  readonly num_train_timesteps: number;
  readonly beta_start: number;
  readonly beta_end: number;
  readonly beta_schedule: BetaSchedule;
  readonly trained_betas: readonly number[] | null;
  /** Clip the x0 prediction to [-clip_sample_range, clip_sample_range]. */
  readonly clip_sample: boolean;
  /** The level after the last step: alpha_bar = 1 (true) or alpha_bar_0 (false). */
  readonly set_alpha_to_one: boolean;
  readonly steps_offset: number;
  readonly prediction_type: PredictionType;
  readonly thresholding: boolean;
  readonly dynamic_thresholding_ratio: number;
  readonly clip_sample_range: number;
  readonly sample_max_value: number;
  readonly timestep_spacing: TimestepSpacing;
  readonly rescale_betas_zero_snr: boolean;
}

const SPEC: ConfigSpec<DDIMConfig> = {
  num_train_timesteps: integer(1000, 1),
  beta_start: finite(0.0001, 0, 1, true),
  beta_end: finite(0.02, 0, 1, true),
  beta_schedule: oneOf('linear', BETA_SCHEDULES),
  trained_betas: nullableNumberList(),
  clip_sample: boolean(true),
  set_alpha_to_one: boolean(true),
  steps_offset: integer(0, 0),
  prediction_type: oneOf('epsilon', PREDICTION_TYPES),
  thresholding: only(false, 'dynamic thresholding is not implemented'),
  dynamic_thresholding_ratio: finite(0.995, 0, 1),
  clip_sample_range: finite(1.0, 0, Infinity, true),
  sample_max_value: finite(1.0, 0, Infinity, true),
  timestep_spacing: oneOf('leading', TIMESTEP_SPACINGS),
  rescale_betas_zero_snr: boolean(false),
};

export interface DDIMSchedule extends SchedulerSchedule {
  /** alpha_bar at each step's timestep. */
  readonly alphaProd: readonly number[];
  /** alpha_bar of the level each step lands on (t - T // N, or the final alpha_bar). */
  readonly alphaProdPrev: readonly number[];
}

/** DDIM keeps no history; the state only says which schedule and step it belongs to. */
export interface DDIMState extends StateHeader {}

export interface DDIMStepArgs<T extends tf.Tensor = tf.Tensor> {
  schedule: Schedule;
  state: DDIMState;
  index: StepIndex;
  sample: T;
  modelOutput: T;
  /** Weight of the fresh noise, in [0, inf); 0 (default) is deterministic DDIM, 1 is DDPM-like. */
  eta?: number;
  /** Standard normal noise of the sample's shape; required when eta > 0 and the step's variance is > 0. */
  noise?: tf.Tensor;
  /** Re-derive eps from the clipped x0 (diffusers' use_clipped_model_output). */
  useClippedModelOutput?: boolean;
}

export class DDIMScheduler implements Scheduler<DDIMState> {
  readonly name = CLASS_NAME;
  readonly config: DDIMConfig;
  readonly numTrainTimesteps: number;
  /** alpha_bar_t for t = 0..T-1 (double precision). */
  readonly alphasCumprod: readonly number[];
  private readonly finalAlphaCumprod: number;
  private readonly owner: string;

  constructor(config: Partial<DDIMConfig> = {}) {
    this.config = readConfig([CLASS_NAME], SPEC, config);
    this.numTrainTimesteps = this.config.num_train_timesteps;
    this.alphasCumprod = Object.freeze(alphasCumprod(`${CLASS_NAME} config`, this.config));
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : (this.alphasCumprod[0] as number);
    this.owner = `${CLASS_NAME}${JSON.stringify(this.config)}`;
  }

  static fromConfig(json: Record<string, unknown>): DDIMScheduler {
    return new DDIMScheduler(json as Partial<DDIMConfig>);
  }

  toConfig(): Record<string, unknown> {
    return writeConfig(CLASS_NAME, this.config);
  }

  /**
   * N steps at the config's timestep spacing; sigmas[i] = sqrt(1 - alpha_bar) of step i's timestep and
   * sigmas[N] that of the final level.
   * @throws InvalidArgumentError when numSteps is not an integer in [1, num_train_timesteps].
   */
  schedule(numSteps: number): DDIMSchedule {
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
      t - ratio >= 0 ? (this.alphasCumprod[t - ratio] as number) : this.finalAlphaCumprod,
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

  initialState(schedule: Schedule): DDIMState {
    const s = checkScheduleOwner(CLASS_NAME, this.owner, schedule);
    return Object.freeze({
      scheduler: CLASS_NAME,
      scheduleKey: s.key,
      scheduleLabel: s.label,
      nextIndex: null,
    });
  }

  /**
   * One DDIM step (formulas 12 and 16 of the DDIM paper). A pure function of its arguments, differentiable
   * in sample and modelOutput (except where clip_sample clips).
   */
  step<T extends tf.Tensor>(args: DDIMStepArgs<T>): { sample: T; state: DDIMState } {
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule) as DDIMSchedule;
    const i = checkStepPosition(CLASS_NAME, schedule, args.state, args.index);
    const shape = checkStepTensors(CLASS_NAME, args.sample, args.modelOutput);
    const eta = args.eta ?? 0;
    if (typeof eta !== 'number' || !Number.isFinite(eta) || eta < 0) {
      throw new InvalidArgumentError(
        `${CLASS_NAME}.step: eta: expected a finite number >= 0, got ${show(eta)}`,
      );
    }
    const ab = schedule.alphaProd[i] as number;
    const abPrev = schedule.alphaProdPrev[i] as number;
    const variance = ((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev);
    const std = eta * Math.sqrt(variance);
    const noise = std > 0 ? checkNoise(CLASS_NAME, args.noise, shape) : undefined;
    const sa = Math.sqrt(ab);
    const sb = Math.sqrt(1 - ab);
    const cfg = this.config;

    const sample = tf.tidy(() => {
      const x = args.sample;
      const out = args.modelOutput;
      let x0: tf.Tensor;
      let eps: tf.Tensor;
      if (cfg.prediction_type === 'epsilon') {
        x0 = weightedSum([
          [x, 1 / sa],
          [out, -sb / sa],
        ]);
        eps = out;
      } else if (cfg.prediction_type === 'sample') {
        x0 = out;
        eps = weightedSum([
          [x, 1 / sb],
          [out, -sa / sb],
        ]);
      } else {
        x0 = weightedSum([
          [x, sa],
          [out, -sb],
        ]);
        eps = weightedSum([
          [out, sa],
          [x, sb],
        ]);
      }
      if (cfg.clip_sample) x0 = tf.clipByValue(x0, -cfg.clip_sample_range, cfg.clip_sample_range);
      if (args.useClippedModelOutput) {
        eps = weightedSum([
          [x, 1 / sb],
          [x0, -sa / sb],
        ]);
      }
      const terms: [tf.Tensor, number][] = [
        [x0, Math.sqrt(abPrev)],
        [eps, Math.sqrt(Math.max(0, 1 - abPrev - std * std))],
      ];
      if (noise) terms.push([noise, std]);
      return weightedSum(terms);
    });
    const state: DDIMState = Object.freeze({
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
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule) as DDIMSchedule;
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

  /** Nothing to release: DDIM keeps no tensors. */
  disposeState(_state: DDIMState): void {}
}
