/**
 * Test helpers: the analytic data distribution x0 ~ N(mu, s^2) (per element) whose exact model outputs are
 * known in closed form, the fixtures written by scripts/make-fixtures.py, and the schedulers the
 * conformance suite runs.
 */
import { readFileSync } from 'node:fs';
import type { Schedule } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AnyScheduler } from '../src/index.js';
import { DDIMScheduler, DDPMScheduler, FlowMatchEulerScheduler, FlowUniPCScheduler } from '../src/index.js';

export interface LoopCase {
  name: string;
  kind: 'flow' | 'vp';
  config: Record<string, unknown>;
  numSteps: number;
  scheduleShift?: number | null;
  eta?: number | null;
  shape: number[];
  mu: number[];
  s: number[];
  xInit: number[];
  timesteps: number[];
  sigmas?: number[];
  noises?: number[][];
  samples: number[][];
  everyStep?: boolean;
}

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/** A per-element affine model a x + b with coefficients computed in double precision. */
export function affine(x: tf.Tensor, a: readonly number[], b: readonly number[]): tf.Tensor {
  return tf.tidy(() =>
    tf.add(
      tf.mul(tf.tensor(a as number[], x.shape, 'float32'), x),
      tf.tensor(b as number[], x.shape, 'float32'),
    ),
  );
}

/** The exact velocity E[eps - x0 | x_sigma] for x_sigma = (1 - sigma) x0 + sigma eps, x0 ~ N(mu, s^2). */
export function flowVelocity(
  x: tf.Tensor,
  sigma: number,
  mu: readonly number[],
  s: readonly number[],
): tf.Tensor {
  const a = 1 - sigma;
  const coef = s.map((si) => (sigma - a * si * si) / (a * a * si * si + sigma * sigma));
  return affine(
    x,
    coef,
    coef.map((c, k) => -c * a * (mu[k] as number) - (mu[k] as number)),
  );
}

/** The exact eps / x0 / v prediction for x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, x0 ~ N(mu, s^2). */
export function vpPrediction(
  kind: string,
  x: tf.Tensor,
  alphaBar: number,
  mu: readonly number[],
  s: readonly number[],
): tf.Tensor {
  const sa = Math.sqrt(alphaBar);
  const sb = Math.sqrt(1 - alphaBar);
  const a: number[] = [];
  const b: number[] = [];
  s.forEach((si, k) => {
    const m = mu[k] as number;
    const v = alphaBar * si * si + 1 - alphaBar;
    const epsA = sb / v;
    const epsB = (-sb * sa * m) / v;
    const x0A = (sa * si * si) / v;
    const x0B = m - (sa * si * si * sa * m) / v;
    if (kind === 'epsilon') {
      a.push(epsA);
      b.push(epsB);
    } else if (kind === 'sample') {
      a.push(x0A);
      b.push(x0B);
    } else {
      a.push(sa * epsA - sb * x0A);
      b.push(sa * epsB - sb * x0B);
    }
  });
  return affine(x, a, b);
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** A scheduler under the conformance suite, with how to make its schedule and its per-step extras. */
export interface Entry {
  label: string;
  make: () => AnyScheduler;
  schedule: (s: AnyScheduler, numSteps: number) => Schedule;
  /** The model output for x at step i (an exact one for data N(mu, s^2)). */
  model: (
    s: AnyScheduler,
    schedule: Schedule,
    i: number,
    x: tf.Tensor,
    mu: number[],
    sd: number[],
  ) => tf.Tensor;
  /** Step arguments besides the contract's (noise for DDPM). */
  extra?: (shape: number[], seed: number) => Record<string, unknown>;
  /** Whether the step is a deterministic function of (state, modelOutput, sample). */
  flow: boolean;
}

const flowModel: Entry['model'] = (_s, schedule, i, x, mu, sd) =>
  flowVelocity(x, schedule.sigmas[i] as number, mu, sd);

const vpModel =
  (kind: string): Entry['model'] =>
  (s, schedule, i, x, mu, sd) =>
    vpPrediction(
      kind,
      x,
      (s as DDIMScheduler).alphasCumprod[schedule.timesteps[i] as number] as number,
      mu,
      sd,
    );

function normalNoise(shape: number[], seed: number): tf.Tensor {
  let state = seed * 7919 + 17;
  const next = () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
  const n = shape.reduce((p, d) => p * d, 1);
  const values = Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()),
  );
  return tf.tensor(values, shape, 'float32');
}

export const ENTRIES: Entry[] = [
  {
    label: 'FlowMatchEuler (reference grid, shift 5)',
    make: () => new FlowMatchEulerScheduler({ shift: 5 }),
    schedule: (s, n) => (s as FlowMatchEulerScheduler).schedule(n),
    model: flowModel,
    flow: true,
  },
  {
    label: 'FlowMatchEuler (diffusers grid, shift 3)',
    make: () => new FlowMatchEulerScheduler({ shift: 3 }, { grid: 'diffusers' }),
    schedule: (s, n) => (s as FlowMatchEulerScheduler).schedule(n),
    model: flowModel,
    flow: true,
  },
  {
    label: 'FlowUniPC (Wan2.1: order 2, bh2, schedule shift 5)',
    make: () => new FlowUniPCScheduler(),
    schedule: (s, n) => (s as FlowUniPCScheduler).schedule(n, { shift: 5 }),
    model: flowModel,
    flow: true,
  },
  {
    label: 'FlowUniPC (order 3, bh1)',
    make: () => new FlowUniPCScheduler({ solver_order: 3, solver_type: 'bh1', shift: 3 }),
    schedule: (s, n) => (s as FlowUniPCScheduler).schedule(n),
    model: flowModel,
    flow: true,
  },
  {
    label: 'FlowUniPC (order 1, noise prediction)',
    make: () => new FlowUniPCScheduler({ solver_order: 1, predict_x0: false }),
    schedule: (s, n) => (s as FlowUniPCScheduler).schedule(n, { shift: 5 }),
    model: flowModel,
    flow: true,
  },
  {
    label: 'DDIM (epsilon, scaled_linear, trailing, eta 0)',
    make: () =>
      new DDIMScheduler({
        beta_schedule: 'scaled_linear',
        beta_start: 0.00085,
        beta_end: 0.012,
        timestep_spacing: 'trailing',
        clip_sample: false,
      }),
    schedule: (s, n) => (s as DDIMScheduler).schedule(n),
    model: vpModel('epsilon'),
    flow: false,
  },
  {
    label: 'DDIM (v_prediction, eta 1)',
    make: () => new DDIMScheduler({ prediction_type: 'v_prediction', clip_sample: false }),
    schedule: (s, n) => (s as DDIMScheduler).schedule(n),
    model: vpModel('v_prediction'),
    extra: (shape, seed) => ({ eta: 1, noise: normalNoise(shape, seed) }),
    flow: false,
  },
  {
    label: 'DDPM (sample, squaredcos_cap_v2)',
    make: () =>
      new DDPMScheduler({
        prediction_type: 'sample',
        beta_schedule: 'squaredcos_cap_v2',
        clip_sample: false,
      }),
    schedule: (s, n) => (s as DDPMScheduler).schedule(n),
    model: vpModel('sample'),
    extra: (shape, seed) => ({ noise: normalNoise(shape, seed) }),
    flow: false,
  },
];

/** Calls step with the contract's arguments plus an entry's extras (noise, eta). */
export function stepWith(
  s: AnyScheduler,
  args: { schedule: Schedule; state: unknown; index: number; sample: tf.Tensor; modelOutput: tf.Tensor },
  extra: Record<string, unknown> = {},
): { sample: tf.Tensor; state: unknown } {
  return (s.step as (a: unknown) => { sample: tf.Tensor; state: unknown })({ ...args, ...extra });
}

/** Disposes the tensors among an entry's extras. */
export function disposeExtra(extra: Record<string, unknown> | undefined): void {
  for (const v of Object.values(extra ?? {})) if (v instanceof tf.Tensor) v.dispose();
}
