/**
 * Flow-matching Euler: x_next = x + v (sigma_next - sigma), with the model's velocity v = eps - x0
 * (docs/method.md §2). Two sigma grids, told apart by the diffusers `_class_name` of the config:
 *
 * - "FlowMatchDiscreteScheduler" (`grid: 'reference'`, the default): the grid of the PRFL reference and of
 *   HunyuanVideo, sigmas = shift(linspace(1, 0, N + 1)), timesteps = int(sigma[:-1] * 1000). With N = 1000
 *   and shift 5 this is the training grid of docs/method.md §3 ("FlowMatchDiscrete").
 * - "FlowMatchEulerDiscreteScheduler" (`grid: 'diffusers'`): diffusers' grid. diffusers builds its table
 *   with the shift already applied, then linspace(sigma_max, sigma_min, N) over it and shifts again, so
 *   its smallest sigma is shift(shift(1 / T)); timesteps = sigma * T, not truncated. Reproduced as is.
 *
 * Sigmas are rounded to float32, as the references keep them in float32 tensors.
 */
import type { Schedule, Scheduler, Sigma, StepIndex } from '@prfl/tensor';
import { InvalidArgumentError } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { SchedulerSchedule, StateHeader } from './common.js';
import {
  asSigmas,
  asTimesteps,
  checkAddNoise,
  checkIndex,
  checkNumSteps,
  checkScheduleOwner,
  checkShift,
  checkStepPosition,
  checkStepTensors,
  f32,
  linspace,
  makeScheduleHeader,
  perBatch,
  shiftSigma,
  show,
  weightedSum,
} from './common.js';
import type { ConfigSpec } from './config.js';
import { boolean, finite, integer, nullableFinite, oneOf, only, readConfig, writeConfig } from './config.js';

/** The PRFL reference's class (HunyuanVideo's FlowMatchDiscreteScheduler) and diffusers' one. */
export type FlowMatchGrid = 'reference' | 'diffusers';

const CLASS_BY_GRID = {
  reference: 'FlowMatchDiscreteScheduler',
  diffusers: 'FlowMatchEulerDiscreteScheduler',
} as const;

/** Config of the reference grid: the keys of HunyuanVideo's FlowMatchDiscreteScheduler. */
export interface FlowMatchDiscreteConfig {
  readonly num_train_timesteps: number;
  readonly shift: number;
  /** true: sigma runs from 1 (noise) to 0 (data); the only direction implemented. */
  readonly reverse: boolean;
  readonly solver: 'euler';
  readonly n_tokens: number | null;
}

/** Config of diffusers' FlowMatchEulerDiscreteScheduler; features beyond the shift are refused. */
export interface FlowMatchEulerDiscreteConfig {
  readonly num_train_timesteps: number;
  readonly shift: number;
  readonly use_dynamic_shifting: boolean;
  readonly base_shift: number | null;
  readonly max_shift: number | null;
  readonly base_image_seq_len: number | null;
  readonly max_image_seq_len: number | null;
  readonly invert_sigmas: boolean;
  readonly shift_terminal: number | null;
  readonly use_karras_sigmas: boolean;
  readonly use_exponential_sigmas: boolean;
  readonly use_beta_sigmas: boolean;
  readonly time_shift_type: string;
  readonly stochastic_sampling: boolean;
}

export type FlowMatchEulerConfig = FlowMatchDiscreteConfig | FlowMatchEulerDiscreteConfig;

const REFERENCE_SPEC: ConfigSpec<FlowMatchDiscreteConfig> = {
  num_train_timesteps: integer(1000, 1),
  shift: finite(1.0, 0, Infinity, true),
  reverse: only(true, 'only sigma from 1 to 0 is implemented'),
  solver: only('euler', 'only the Euler solver is implemented'),
  n_tokens: nullableFinite(null),
};

const DIFFUSERS_SPEC: ConfigSpec<FlowMatchEulerDiscreteConfig> = {
  num_train_timesteps: integer(1000, 1),
  shift: finite(1.0, 0, Infinity, true),
  use_dynamic_shifting: only(false, 'dynamic shifting is not implemented; pass a fixed shift'),
  base_shift: nullableFinite(0.5),
  max_shift: nullableFinite(1.15),
  base_image_seq_len: nullableFinite(256),
  max_image_seq_len: nullableFinite(4096),
  invert_sigmas: only(false, 'inverted sigmas are not implemented'),
  shift_terminal: only(null, 'shift_terminal is not implemented'),
  use_karras_sigmas: only(false, 'Karras sigmas are not implemented'),
  use_exponential_sigmas: only(false, 'exponential sigmas are not implemented'),
  use_beta_sigmas: only(false, 'beta sigmas are not implemented'),
  time_shift_type: oneOf('exponential', ['exponential']),
  stochastic_sampling: boolean(false),
};

/** A flow-matching Euler schedule. */
export interface FlowMatchEulerSchedule extends SchedulerSchedule {
  readonly shift: number;
}

/** Euler needs no history; the state only says which schedule and step it belongs to. */
export interface FlowMatchEulerState extends StateHeader {}

export interface FlowMatchEulerOptions {
  /** Which class the config reads as (default 'reference'). */
  grid?: FlowMatchGrid;
}

/**
 * The flow-matching Euler sampler. `new FlowMatchEulerScheduler({ shift: 5 })` is the PRFL reference's
 * sampler; `FlowMatchEulerScheduler.fromConfig(json)` reads either class's diffusers JSON.
 */
export class FlowMatchEulerScheduler implements Scheduler<FlowMatchEulerState> {
  readonly name: string;
  readonly grid: FlowMatchGrid;
  readonly config: FlowMatchEulerConfig;
  readonly numTrainTimesteps: number;
  private readonly owner: string;

  constructor(config: Partial<FlowMatchEulerConfig> = {}, options: FlowMatchEulerOptions = {}) {
    const grid = options.grid ?? 'reference';
    if (grid !== 'reference' && grid !== 'diffusers') {
      throw new InvalidArgumentError(
        `FlowMatchEulerScheduler: grid: expected "reference" or "diffusers", got ${show(grid)}`,
      );
    }
    this.grid = grid;
    this.name = CLASS_BY_GRID[grid];
    this.config =
      grid === 'reference'
        ? readConfig([this.name], REFERENCE_SPEC, config)
        : readConfig([this.name], DIFFUSERS_SPEC, config);
    this.numTrainTimesteps = this.config.num_train_timesteps;
    this.owner = `${this.name}${JSON.stringify(this.config)}`;
  }

  /** Reads a diffusers JSON config; `_class_name` picks the grid (default: the reference's). */
  static fromConfig(json: Record<string, unknown>): FlowMatchEulerScheduler {
    const className = json?.['_class_name'];
    const grid: FlowMatchGrid = className === CLASS_BY_GRID.diffusers ? 'diffusers' : 'reference';
    if (
      className !== undefined &&
      className !== CLASS_BY_GRID.reference &&
      className !== CLASS_BY_GRID.diffusers
    ) {
      throw new InvalidArgumentError(
        `FlowMatchEulerScheduler.fromConfig: _class_name: expected "${CLASS_BY_GRID.reference}" or "${CLASS_BY_GRID.diffusers}", got ${show(className)}`,
      );
    }
    return new FlowMatchEulerScheduler(json as Partial<FlowMatchEulerConfig>, { grid });
  }

  toConfig(): Record<string, unknown> {
    return writeConfig(this.name, this.config);
  }

  /** The shift the config holds. */
  get shift(): number {
    return this.config.shift;
  }

  /**
   * N steps: N timesteps and N + 1 sigmas ending at 0.
   * @throws InvalidArgumentError when numSteps is not a positive integer.
   */
  schedule(numSteps: number): FlowMatchEulerSchedule {
    const n = checkNumSteps(`${this.name}.schedule`, numSteps);
    const shift = checkShift(`${this.name}.schedule`, this.config.shift);
    const T = this.numTrainTimesteps;
    let sigmas: number[];
    let timesteps: number[];
    if (this.grid === 'reference') {
      sigmas = linspace(1, 0, n + 1).map((s) => f32(shiftSigma(s, shift)));
      timesteps = sigmas.slice(0, n).map((s) => Math.trunc(s * T));
    } else {
      // diffusers' table: t = T..1, sigma = shift(t / T); its ends are sigma_max and sigma_min.
      const sigmaMax = f32(shiftSigma(1, shift));
      const sigmaMin = f32(shiftSigma(f32(1 / T), shift));
      const first = sigmaMax * T;
      const last = sigmaMin * T;
      sigmas = linspace(first, last, n).map((t) => f32(shiftSigma(t / T, shift)));
      sigmas.push(0);
      timesteps = sigmas.slice(0, n).map((s) => f32(s * T));
    }
    const header = makeScheduleHeader(this.name, this.config, n);
    return Object.freeze({
      ...header,
      shift,
      timesteps: asTimesteps(timesteps),
      sigmas: asSigmas(sigmas),
    });
  }

  initialState(schedule: Schedule): FlowMatchEulerState {
    const s = checkScheduleOwner(this.name, this.owner, schedule);
    return Object.freeze({
      scheduler: this.name,
      scheduleKey: s.key,
      scheduleLabel: s.label,
      nextIndex: null,
    });
  }

  /**
   * One Euler step from sigmas[index] to sigmas[index + 1]. A pure function of its arguments; the result
   * is a new tensor (the caller disposes it), differentiable in sample and modelOutput.
   */
  step<T extends tf.Tensor>(args: {
    schedule: Schedule;
    state: FlowMatchEulerState;
    index: StepIndex;
    sample: T;
    modelOutput: T;
  }): { sample: T; state: FlowMatchEulerState } {
    const schedule = checkScheduleOwner(this.name, this.owner, args?.schedule);
    const index = checkStepPosition(this.name, schedule, args.state, args.index);
    checkStepTensors(this.name, args.sample, args.modelOutput);
    const sigma = schedule.sigmas[index] as number;
    const sigmaNext = schedule.sigmas[index + 1] as number;
    const sample = weightedSum([
      [args.sample, 1],
      [args.modelOutput, sigmaNext - sigma],
    ]);
    const state: FlowMatchEulerState = Object.freeze({
      scheduler: this.name,
      scheduleKey: schedule.key,
      scheduleLabel: schedule.label,
      nextIndex: index + 1,
    });
    return { sample: sample as T, state };
  }

  /**
   * The clean-sample estimate x0_hat = x - sigma_index v (docs/method.md §2) of a sample at step `index`, e.g. for a
   * pixel-space reward (RGB ReFL) or a preview. A new tensor, differentiable in sample and modelOutput.
   */
  predictOriginal<T extends tf.Tensor>(args: {
    schedule: Schedule;
    index: StepIndex;
    sample: T;
    modelOutput: T;
  }): T {
    const schedule = checkScheduleOwner(this.name, this.owner, args?.schedule);
    const i = checkIndex(`${this.name}.predictOriginal`, schedule, args.index);
    checkStepTensors(this.name, args.sample, args.modelOutput);
    return weightedSum([
      [args.sample, 1],
      [args.modelOutput, -(schedule.sigmas[i] as number)],
    ]) as T;
  }

  /** x_sigma = (1 - sigma) x0 + sigma eps, with one sigma or one per batch element. */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, sigmas: Sigma | readonly Sigma[]): tf.Tensor {
    const a = checkAddNoise(this.name, x0, noise, sigmas);
    return tf.tidy(() => {
      const s = perBatch(a.sigmas, a.x0.shape);
      return tf.add(tf.mul(tf.sub(1, s), a.x0), tf.mul(s, a.noise));
    });
  }

  /** Nothing to release: Euler keeps no tensors. */
  disposeState(_state: FlowMatchEulerState): void {}
}
