/**
 * Wan2.1's flow UniPC multistep sampler (FlowUniPCMultistepScheduler, wan/utils/fm_solvers_unipc.py, itself
 * diffusers' UniPCMultistepScheduler rewritten for rectified flow): a predictor (UniP, order 1-3) from the
 * current x0 prediction and the previous ones, and a corrector (UniC) that, once the model has been
 * evaluated at the predicted sample, redoes the previous step with that new output. With alpha = 1 - sigma
 * and lambda = log(alpha / sigma), step i goes from sigma_i to sigma_{i+1} with h = lambda_{i+1} - lambda_i.
 *
 * How PRFL uses it (docs/method.md §3): built with shift 1 (so sigma_max = 0.999, sigma_min = 0), schedule(40,
 * { shift: 5 }) takes linspace(0.999, 0, 41)[:-1], applies the shift and appends a final 0; order 2, bh2,
 * x0 prediction, lower order on the final step, corrector on every step after the first.
 *
 * Where we differ from the reference, on purpose:
 * - The last step lands on sigma = 0, where lambda is infinite. There the reference's formula gives x0_hat
 *   for bh2 but NaN for bh1 (it multiplies B(h) = -inf by a zero correction); we take the limit, x0_hat,
 *   for both.
 * - predict_x0 = false (noise prediction) converts v to eps = x + (1 - sigma) v. The reference writes
 *   x - (1 - sigma) v, which is not the noise of x = (1 - sigma) x0 + sigma eps when v = eps - x0.
 * - lower_order_final = false with solver_order > 1 is refused: the final multistep step to sigma = 0
 *   divides by a zero step ratio and the reference returns inf there.
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
  checkStateTensor,
  checkStepPosition,
  checkStepTensors,
  f32,
  linspace,
  makeScheduleHeader,
  perBatch,
  shiftSigma,
  show,
  solveLinear,
  weightedSum,
} from './common.js';
import type { ConfigSpec } from './config.js';
import { boolean, finite, integer, integerList, only, oneOf, readConfig, writeConfig } from './config.js';

const CLASS_NAME = 'FlowUniPCMultistepScheduler';

/** The config keys of Wan2.1's FlowUniPCMultistepScheduler. */
export interface FlowUniPCConfig {
  readonly num_train_timesteps: number;
  /** Predictor order p (the corrector makes it p + 1): 1, 2 or 3. */
  readonly solver_order: number;
  readonly prediction_type: 'flow_prediction';
  /** Shift applied when the scheduler is built and, unless schedule() is given one, again per schedule. */
  readonly shift: number;
  readonly use_dynamic_shifting: boolean;
  readonly thresholding: boolean;
  readonly dynamic_thresholding_ratio: number;
  readonly sample_max_value: number;
  /** true: the multistep update runs on x0 predictions (data prediction); false: on noise predictions. */
  readonly predict_x0: boolean;
  /** B(h) = h ("bh1") or e^h - 1 ("bh2"). */
  readonly solver_type: 'bh1' | 'bh2';
  /** Order min(solver_order, steps left) near the end. */
  readonly lower_order_final: boolean;
  /** Step indices i whose output is not corrected (the corrector of step i + 1 is skipped). */
  readonly disable_corrector: readonly number[];
  readonly solver_p: null;
  readonly timestep_spacing: 'linspace';
  readonly steps_offset: number;
  readonly final_sigmas_type: 'zero';
}

const SPEC: ConfigSpec<FlowUniPCConfig> = {
  num_train_timesteps: integer(1000, 2),
  solver_order: integer(2, 1, 3),
  prediction_type: only('flow_prediction', 'the model predicts the velocity v = eps - x0'),
  shift: finite(1.0, 0, Infinity, true),
  use_dynamic_shifting: only(false, 'dynamic shifting is not implemented; pass a fixed shift'),
  thresholding: only(false, 'dynamic thresholding is not implemented'),
  dynamic_thresholding_ratio: finite(0.995, 0, 1),
  sample_max_value: finite(1.0, 0, Infinity, true),
  predict_x0: boolean(true),
  solver_type: oneOf('bh2', ['bh1', 'bh2']),
  lower_order_final: boolean(true),
  disable_corrector: integerList([]),
  solver_p: only(null, 'a custom solver_p is not supported'),
  timestep_spacing: oneOf('linspace', ['linspace']),
  steps_offset: integer(0, 0),
  final_sigmas_type: only('zero', 'the reference only implements a final sigma of zero'),
};

export interface FlowUniPCSchedule extends SchedulerSchedule {
  /** The shift this schedule was made with. */
  readonly shift: number;
}

/**
 * The solver state between steps: the last `solver_order` converted model outputs (x0 or eps
 * predictions, oldest first; null until filled), the sample the last predictor started from (for the
 * corrector), and the warm-up counters. Its tensors belong to the state: release them with disposeState.
 */
export interface FlowUniPCState extends StateHeader {
  readonly modelOutputs: readonly (tf.Tensor | null)[];
  readonly lastSample: tf.Tensor | null;
  /** Steps taken so far, capped at solver_order (diffusers' lower_order_nums). */
  readonly lowerOrderNums: number;
  /** The predictor order of the previous step, which its corrector uses. */
  readonly lastOrder: number;
}

/** lambda = log(alpha / sigma) for alpha = 1 - sigma. */
function lambdaOf(sigma: number): number {
  return Math.log(1 - sigma) - Math.log(sigma);
}

/**
 * The UniPC coefficient vector b_k = h phi_k(hh) k! / B(h) and the Vandermonde rows R_k = r^(k-1), as
 * the reference builds them.
 */
function unipcSystem(
  rks: readonly number[],
  hh: number,
  bh: 'bh1' | 'bh2',
  order: number,
): { R: number[][]; b: number[]; hPhi1: number; Bh: number } {
  const hPhi1 = Math.expm1(hh);
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  const Bh = bh === 'bh1' ? hh : Math.expm1(hh);
  const R: number[][] = [];
  const b: number[] = [];
  for (let i = 1; i <= order; i++) {
    R.push(rks.map((r) => r ** (i - 1)));
    b.push((hPhiK * factorial) / Bh);
    factorial *= i + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  return { R, b, hPhi1, Bh };
}

export interface FlowUniPCScheduleOptions {
  /** Shift for this schedule (Wan2.1's sample_shift); default the config's shift. */
  shift?: number;
}

export class FlowUniPCScheduler implements Scheduler<FlowUniPCState> {
  readonly name = CLASS_NAME;
  readonly config: FlowUniPCConfig;
  readonly numTrainTimesteps: number;
  /** The first sigma of the scheduler's table: shift_config(1 - 1 / T) in float32 (0.999 for shift 1). */
  readonly sigmaMax: number;
  private readonly owner: string;

  constructor(config: Partial<FlowUniPCConfig> = {}) {
    this.config = readConfig([CLASS_NAME], SPEC, config);
    if (this.config.solver_order > 1 && !this.config.lower_order_final) {
      throw new InvalidArgumentError(
        `${CLASS_NAME} config: lower_order_final: expected true when solver_order > 1 (the last step goes to sigma 0, where a multistep update divides by zero; the reference returns inf), got false`,
      );
    }
    this.numTrainTimesteps = this.config.num_train_timesteps;
    const T = this.numTrainTimesteps;
    const s = f32(this.config.shift);
    // The reference's table: sigma = 1 - linspace(1, 1/T, T)[::-1] in float32, shifted in float32.
    const top = f32(1 - 1 / T);
    this.sigmaMax = f32(f32(s * top) / f32(1 + f32((s - 1) * top)));
    this.owner = `${CLASS_NAME}${JSON.stringify(this.config)}`;
  }

  static fromConfig(json: Record<string, unknown>): FlowUniPCScheduler {
    return new FlowUniPCScheduler(json as Partial<FlowUniPCConfig>);
  }

  toConfig(): Record<string, unknown> {
    return writeConfig(CLASS_NAME, this.config);
  }

  /**
   * N steps: sigmas = shift(linspace(sigmaMax, 0, N + 1)[:-1]) in float32 plus a final 0; timesteps =
   * int(sigma * T) of the unrounded sigmas, as Wan2.1's set_timesteps.
   * @throws InvalidArgumentError on numSteps < 1 or a shift <= 0.
   */
  schedule(numSteps: number, options: FlowUniPCScheduleOptions = {}): FlowUniPCSchedule {
    const n = checkNumSteps(`${CLASS_NAME}.schedule`, numSteps);
    const shift = checkShift(`${CLASS_NAME}.schedule`, options?.shift ?? this.config.shift);
    const T = this.numTrainTimesteps;
    const raw = linspace(this.sigmaMax, 0, n + 1)
      .slice(0, n)
      .map((s) => shiftSigma(s, shift));
    const timesteps = raw.map((s) => Math.trunc(s * T));
    const sigmas = [...raw.map(f32), 0];
    return Object.freeze({
      ...makeScheduleHeader(CLASS_NAME, this.config, n, { shift }),
      shift,
      timesteps: asTimesteps(timesteps),
      sigmas: asSigmas(sigmas),
    });
  }

  initialState(schedule: Schedule): FlowUniPCState {
    const s = checkScheduleOwner(CLASS_NAME, this.owner, schedule);
    return Object.freeze({
      scheduler: CLASS_NAME,
      scheduleKey: s.key,
      scheduleLabel: s.label,
      nextIndex: null,
      modelOutputs: Object.freeze(new Array<tf.Tensor | null>(this.config.solver_order).fill(null)),
      lastSample: null,
      lowerOrderNums: 0,
      lastOrder: 0,
    });
  }

  /**
   * One UniPC step at `index`: converts the velocity to an x0 (or eps) prediction, corrects `sample` with it
   * (UniC, from the previous step's start), then predicts the sample at sigmas[index + 1] (UniP). A pure
   * function of its arguments: it returns a new sample and a new state and leaves `state` intact (dispose
   * the old state yourself once you no longer need it). Differentiable in sample and modelOutput.
   */
  step<T extends tf.Tensor>(args: {
    schedule: Schedule;
    state: FlowUniPCState;
    index: StepIndex;
    sample: T;
    modelOutput: T;
  }): { sample: T; state: FlowUniPCState } {
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule) as FlowUniPCSchedule;
    const i = checkStepPosition(CLASS_NAME, schedule, args.state, args.index);
    const shape = checkStepTensors(CLASS_NAME, args.sample, args.modelOutput);
    const state = args.state;
    if (!Array.isArray(state.modelOutputs) || state.modelOutputs.length !== this.config.solver_order) {
      throw new InvalidArgumentError(
        `${CLASS_NAME}.step: state.modelOutputs: expected ${this.config.solver_order} entries (solver_order), got ${show(state.modelOutputs?.length)}`,
      );
    }
    state.modelOutputs.forEach((t, k) => {
      if (t !== null) checkStateTensor(CLASS_NAME, `modelOutputs[${k}]`, t, shape);
    });
    if (state.lastSample !== null) checkStateTensor(CLASS_NAME, 'lastSample', state.lastSample, shape);

    const cfg = this.config;
    const n = schedule.numSteps;
    const useCorrector = i > 0 && !cfg.disable_corrector.includes(i - 1) && state.lastSample !== null;
    let order = cfg.lower_order_final ? Math.min(cfg.solver_order, n - i) : cfg.solver_order;
    order = Math.min(order, state.lowerOrderNums + 1);

    const [next, converted, last, ...kept] = tf.tidy(() => {
      const m = this.convertModelOutput(args.modelOutput, args.sample, schedule.sigmas[i] as number);
      const x = useCorrector ? this.correct(schedule, i, state, m) : tf.clone(args.sample);
      const history = [...state.modelOutputs.slice(1), m];
      const prediction = this.predict(schedule, i, history, x, order);
      const clones = state.modelOutputs.slice(1).flatMap((t) => (t === null ? [] : [tf.clone(t)]));
      return [prediction, m, x, ...clones];
    }) as tf.Tensor[];

    const older = state.modelOutputs.slice(1);
    let k = 0;
    const modelOutputs = [
      ...older.map((t) => (t === null ? null : (kept[k++] as tf.Tensor))),
      converted as tf.Tensor,
    ];
    const nextState: FlowUniPCState = Object.freeze({
      scheduler: CLASS_NAME,
      scheduleKey: schedule.key,
      scheduleLabel: schedule.label,
      nextIndex: i + 1,
      modelOutputs: Object.freeze(modelOutputs),
      lastSample: last as tf.Tensor,
      lowerOrderNums: Math.min(state.lowerOrderNums + 1, cfg.solver_order),
      lastOrder: order,
    });
    return { sample: next as T, state: nextState };
  }

  /** x0 = x - sigma v (predict_x0), or eps = x + (1 - sigma) v. */
  private convertModelOutput(v: tf.Tensor, x: tf.Tensor, sigma: number): tf.Tensor {
    return this.config.predict_x0
      ? weightedSum([
          [x, 1],
          [v, -sigma],
        ])
      : weightedSum([
          [x, 1],
          [v, 1 - sigma],
        ]);
  }

  /**
   * UniP: from x at sigma_i with the converted outputs `history` (oldest first; the last one is step i's),
   * the sample at sigma_{i+1}.
   */
  private predict(
    schedule: FlowUniPCSchedule,
    i: number,
    history: readonly (tf.Tensor | null)[],
    x: tf.Tensor,
    order: number,
  ): tf.Tensor {
    const sigmaS0 = schedule.sigmas[i] as number;
    const sigmaT = schedule.sigmas[i + 1] as number;
    const alphaS0 = 1 - sigmaS0;
    const m0 = history[history.length - 1] as tf.Tensor;
    if (sigmaT === 0) {
      // lambda_t = inf: the update's limit is the clean estimate itself (order 1 here, by lower_order_final).
      if (order !== 1)
        throw new InvalidArgumentError(`${CLASS_NAME}.step: internal: order ${order} at sigma 0`);
      return this.config.predict_x0
        ? tf.clone(m0)
        : weightedSum([
            [x, 1 / alphaS0],
            [m0, -sigmaS0 / alphaS0],
          ]);
    }
    const alphaT = 1 - sigmaT;
    const lambdaS0 = lambdaOf(sigmaS0);
    const h = lambdaOf(sigmaT) - lambdaS0;
    const rks: number[] = [];
    const previous: tf.Tensor[] = [];
    for (let k = 1; k < order; k++) {
      rks.push((lambdaOf(schedule.sigmas[i - k] as number) - lambdaS0) / h);
      previous.push(history[history.length - 1 - k] as tf.Tensor);
    }
    rks.push(1);
    const hh = this.config.predict_x0 ? -h : h;
    const { R, b, hPhi1, Bh } = unipcSystem(rks, hh, this.config.solver_type, order);
    // Order 2 uses rho = 1/2, as the reference does ("a simplified version").
    const rhos =
      order === 1
        ? []
        : order === 2
          ? [0.5]
          : solveLinear(
              R.slice(0, -1).map((row) => row.slice(0, -1)),
              b.slice(0, -1),
            );
    // x_t = cx x - c hPhi1 m0 - c B(h) sum_k rho_k (m_k - m0) / r_k, with c = alpha_t (x0) or sigma_t (eps).
    const c = this.config.predict_x0 ? alphaT : sigmaT;
    const cx = this.config.predict_x0 ? sigmaT / sigmaS0 : alphaT / alphaS0;
    let c0 = -c * hPhi1;
    const terms: [tf.Tensor, number][] = [[x, cx]];
    rhos.forEach((rho, k) => {
      const w = (c * Bh * rho) / (rks[k] as number);
      c0 += w;
      terms.push([previous[k] as tf.Tensor, -w]);
    });
    terms.push([m0, c0]);
    return weightedSum(terms);
  }

  /**
   * UniC at step i: redoes step i - 1 (from state.lastSample at sigma_{i-1} to sigma_i) with the new
   * output m_t of step i, at the order the previous predictor used.
   */
  private correct(
    schedule: FlowUniPCSchedule,
    i: number,
    state: FlowUniPCState,
    modelT: tf.Tensor,
  ): tf.Tensor {
    const order = state.lastOrder;
    const history = state.modelOutputs;
    const m0 = history[history.length - 1] as tf.Tensor;
    const x = state.lastSample as tf.Tensor;
    const sigmaS0 = schedule.sigmas[i - 1] as number;
    const sigmaT = schedule.sigmas[i] as number;
    const alphaS0 = 1 - sigmaS0;
    const alphaT = 1 - sigmaT;
    const lambdaS0 = lambdaOf(sigmaS0);
    const h = lambdaOf(sigmaT) - lambdaS0;
    const rks: number[] = [];
    const previous: tf.Tensor[] = [];
    for (let k = 1; k < order; k++) {
      rks.push((lambdaOf(schedule.sigmas[i - 1 - k] as number) - lambdaS0) / h);
      previous.push(history[history.length - 1 - k] as tf.Tensor);
    }
    rks.push(1);
    const hh = this.config.predict_x0 ? -h : h;
    const { R, b, hPhi1, Bh } = unipcSystem(rks, hh, this.config.solver_type, order);
    const rhos = order === 1 ? [0.5] : solveLinear(R, b);
    // x_t = cx x - c hPhi1 m0 - c B(h) (sum_{k<p} rho_k (m_k - m0) / r_k + rho_p (m_t - m0)).
    const c = this.config.predict_x0 ? alphaT : sigmaT;
    const cx = this.config.predict_x0 ? sigmaT / sigmaS0 : alphaT / alphaS0;
    const rhoT = rhos[order - 1] as number;
    let c0 = -c * hPhi1 + c * Bh * rhoT;
    const terms: [tf.Tensor, number][] = [[x, cx]];
    for (let k = 0; k < order - 1; k++) {
      const w = (c * Bh * (rhos[k] as number)) / (rks[k] as number);
      c0 += w;
      terms.push([previous[k] as tf.Tensor, -w]);
    }
    terms.push([m0, c0]);
    terms.push([modelT, -c * Bh * rhoT]);
    return weightedSum(terms);
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
    const schedule = checkScheduleOwner(CLASS_NAME, this.owner, args?.schedule);
    const i = checkIndex(`${CLASS_NAME}.predictOriginal`, schedule, args.index);
    checkStepTensors(CLASS_NAME, args.sample, args.modelOutput);
    return weightedSum([
      [args.sample, 1],
      [args.modelOutput, -(schedule.sigmas[i] as number)],
    ]) as T;
  }

  /** x_sigma = (1 - sigma) x0 + sigma eps, with one sigma or one per batch element. */
  addNoise(x0: tf.Tensor, noise: tf.Tensor, sigmas: Sigma | readonly Sigma[]): tf.Tensor {
    const a = checkAddNoise(CLASS_NAME, x0, noise, sigmas);
    return tf.tidy(() => {
      const s = perBatch(a.sigmas, a.x0.shape);
      return tf.add(tf.mul(tf.sub(1, s), a.x0), tf.mul(s, a.noise));
    });
  }

  /** Disposes the tensors a state holds (its model-output history and last sample). */
  disposeState(state: FlowUniPCState): void {
    for (const t of state?.modelOutputs ?? []) if (t !== null && !t.isDisposed) t.dispose();
    if (state?.lastSample && !state.lastSample.isDisposed) state.lastSample.dispose();
  }
}
