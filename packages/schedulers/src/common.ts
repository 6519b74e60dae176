/**
 * The little every scheduler file shares: argument checks with messages that name what was expected and
 * what arrived, the identity of a schedule and of a state (so a state from another schedule is refused),
 * and two tensor helpers. The sampling math itself lives in each scheduler's own file.
 */
import type { Schedule, Sigma, StepIndex, Timestep } from '@prfl/tensor';
import { formatShape, InvalidArgumentError } from '@prfl/tensor';
import * as tf from '@tensorflow/tfjs-core';

/**
 * A schedule as our schedulers make it: the contract's timesteps and sigmas plus who made it. `key`
 * identifies the scheduler config and the schedule's arguments; `label` is the same for people.
 */
export interface SchedulerSchedule extends Schedule {
  /** diffusers class name of the scheduler that made it. */
  readonly scheduler: string;
  /** `${class}${config JSON}` of the scheduler that made it. */
  readonly owner: string;
  /** Unique for (owner, arguments of `schedule`). */
  readonly key: string;
  /** e.g. "FlowUniPCMultistepScheduler, 40 steps, shift 5". */
  readonly label: string;
}

/** What every solver state carries besides its tensors: which schedule it belongs to and which step is next. */
export interface StateHeader {
  /** diffusers class name of the scheduler whose `initialState` or `step` made it. */
  readonly scheduler: string;
  /** The `key` of the schedule it belongs to. */
  readonly scheduleKey: string;
  readonly scheduleLabel: string;
  /** The index the next step must have; null for a fresh state, which may start at any index. */
  readonly nextIndex: number | null;
}

export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value instanceof tf.Tensor) return `a tensor of shape ${formatShape(value.shape)}`;
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}

/** N, a number of sampling steps: a positive integer, at most `max`. */
export function checkNumSteps(what: string, numSteps: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof numSteps !== 'number' || !Number.isInteger(numSteps) || numSteps < 1 || numSteps > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer in [1, ${max}]`;
    throw new InvalidArgumentError(`${what}: numSteps: expected ${range}, got ${show(numSteps)}`);
  }
  return numSteps;
}

/** A time shift s of sigma' = s sigma / (1 + (s - 1) sigma): finite and > 0. */
export function checkShift(what: string, shift: unknown): number {
  if (typeof shift !== 'number' || !Number.isFinite(shift) || shift <= 0) {
    throw new InvalidArgumentError(`${what}: shift: expected a finite number > 0, got ${show(shift)}`);
  }
  return shift;
}

/** sigma' = s sigma / (1 + (s - 1) sigma): the resolution-dependent time shift of SD3 and Wan2.1 (docs/method.md §2). */
export function shiftSigma(sigma: number, shift: number): number {
  return (shift * sigma) / (1 + (shift - 1) * sigma);
}

/**
 * numpy.linspace(start, stop, num) to the last bit (start + i * step, the last point exactly stop): the
 * references build their grids with it, and integer timesteps are truncated from these values.
 */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** Rounds to the nearest float32, as the reference stores its sigma tables in float32 tensors. */
export const f32 = Math.fround;

export function makeScheduleHeader(
  className: string,
  config: unknown,
  numSteps: number,
  extra: Record<string, number> = {},
): Pick<SchedulerSchedule, 'scheduler' | 'owner' | 'key' | 'label' | 'numSteps'> {
  const owner = `${className}${JSON.stringify(config)}`;
  const args = Object.entries(extra)
    .map(([k, v]) => `, ${k} ${v}`)
    .join('');
  return {
    scheduler: className,
    owner,
    key: `${owner}|${numSteps}${args}`,
    label: `${className}, ${numSteps} step${numSteps === 1 ? '' : 's'}${args}`,
    numSteps,
  };
}

/** Checks that `schedule` was made by a scheduler with this class and config. */
export function checkScheduleOwner(className: string, owner: string, schedule: unknown): SchedulerSchedule {
  const s = schedule as Partial<SchedulerSchedule> | undefined;
  if (s === null || typeof s !== 'object' || typeof s.owner !== 'string') {
    throw new InvalidArgumentError(
      `${className}.step: schedule: expected a schedule made by this scheduler's schedule(numSteps), got ${show(schedule)}`,
    );
  }
  if (s.owner !== owner) {
    throw new InvalidArgumentError(
      `${className}.step: schedule: expected a schedule made by this scheduler (${owner}), got one made by ${s.owner}`,
    );
  }
  return s as SchedulerSchedule;
}

/** Checks a step index against the schedule and the state, and the state against the schedule. */
export function checkStepPosition(
  className: string,
  schedule: SchedulerSchedule,
  state: unknown,
  index: unknown,
): StepIndex {
  const what = `${className}.step`;
  const st = state as Partial<StateHeader> | undefined;
  if (st === null || typeof st !== 'object' || typeof st.scheduleKey !== 'string') {
    throw new InvalidArgumentError(
      `${what}: state: expected a ${className} state from initialState(schedule) or a previous step, got ${show(state)}`,
    );
  }
  if (st.scheduler !== className) {
    throw new InvalidArgumentError(
      `${what}: state: expected a ${className} state, got a state of ${String(st.scheduler)}`,
    );
  }
  if (st.scheduleKey !== schedule.key) {
    throw new InvalidArgumentError(
      `${what}: state: it belongs to another schedule: expected a state of "${schedule.label}", got one of "${String(st.scheduleLabel)}"`,
    );
  }
  checkIndex(what, schedule, index);
  if (st.nextIndex !== null && st.nextIndex !== undefined && st.nextIndex !== index) {
    throw new InvalidArgumentError(
      `${what}: index: the state comes from step ${st.nextIndex - 1}, so it expects step ${st.nextIndex}; got ${index}`,
    );
  }
  return index as StepIndex;
}

/** A step index of the schedule: an integer in [0, N - 1]. */
export function checkIndex(what: string, schedule: SchedulerSchedule, index: unknown): StepIndex {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= schedule.numSteps) {
    throw new InvalidArgumentError(
      `${what}: index: expected a step index in [0, ${schedule.numSteps - 1}] of "${schedule.label}", got ${show(index)}`,
    );
  }
  return index as StepIndex;
}

/** sample and modelOutput: float32 tensors of one shape; returns that shape. */
export function checkStepTensors(className: string, sample: unknown, modelOutput: unknown): number[] {
  const what = `${className}.step`;
  if (!(sample instanceof tf.Tensor)) {
    throw new InvalidArgumentError(`${what}: sample: expected a tf.Tensor, got ${show(sample)}`);
  }
  if (!(modelOutput instanceof tf.Tensor)) {
    throw new InvalidArgumentError(`${what}: modelOutput: expected a tf.Tensor, got ${show(modelOutput)}`);
  }
  for (const [name, t] of [
    ['sample', sample],
    ['modelOutput', modelOutput],
  ] as const) {
    if (t.isDisposed) throw new InvalidArgumentError(`${what}: ${name}: the tensor was disposed`);
    if (t.dtype !== 'float32') {
      throw new InvalidArgumentError(`${what}: ${name}: expected dtype float32, got ${t.dtype}`);
    }
  }
  if (!sameShape(sample.shape, modelOutput.shape)) {
    throw new InvalidArgumentError(
      `${what}: modelOutput: expected the sample's shape ${formatShape(sample.shape)}, got ${formatShape(modelOutput.shape)}`,
    );
  }
  return sample.shape;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A tensor a state holds must still exist and have the sample's shape. */
export function checkStateTensor(
  className: string,
  name: string,
  t: tf.Tensor,
  shape: readonly number[],
): void {
  if (t.isDisposed) {
    throw new InvalidArgumentError(
      `${className}.step: state.${name}: the tensor was disposed (dispose a state only after the step that reads it)`,
    );
  }
  if (!sameShape(t.shape, shape)) {
    throw new InvalidArgumentError(
      `${className}.step: state.${name}: expected the sample's shape ${formatShape(shape)}, got ${formatShape(t.shape)} (a state from a run with other shapes)`,
    );
  }
}

/** Optional per-step noise (DDPM, DDIM with eta > 0): float32, the sample's shape. */
export function checkNoise(className: string, noise: unknown, shape: readonly number[]): tf.Tensor {
  if (!(noise instanceof tf.Tensor) || noise.isDisposed) {
    throw new InvalidArgumentError(
      `${className}.step: noise: this step adds noise, expected a float32 tensor of shape ${formatShape(shape)} (e.g. generator.normal(shape)), got ${show(noise)}`,
    );
  }
  if (noise.dtype !== 'float32' || !sameShape(noise.shape, shape)) {
    throw new InvalidArgumentError(
      `${className}.step: noise: expected a float32 tensor of the sample's shape ${formatShape(shape)}, got ${noise.dtype} ${formatShape(noise.shape)}`,
    );
  }
  return noise;
}

/** sum_k c_k t_k with the coefficients computed in double precision in JavaScript. */
export function weightedSum(terms: ReadonlyArray<readonly [tf.Tensor, number]>): tf.Tensor {
  return tf.tidy(() => {
    let acc: tf.Tensor | undefined;
    for (const [t, c] of terms) {
      const term = tf.mul(t, tf.scalar(c, 'float32'));
      acc = acc === undefined ? term : tf.add(acc, term);
    }
    if (acc === undefined) throw new InvalidArgumentError('weightedSum: expected at least one term');
    return acc;
  });
}

/**
 * Per-batch-element coefficients broadcast over a tensor of `shape`: [B, 1, 1, ...]. One number gives a
 * scalar tensor.
 */
export function perBatch(values: readonly number[] | number, shape: readonly number[]): tf.Tensor {
  if (typeof values === 'number') return tf.scalar(values, 'float32');
  return tf.tensor(values as number[], [values.length, ...shape.slice(1).map(() => 1)], 'float32');
}

/** Validates addNoise's arguments; returns the sigmas as a number or an array of one per batch element. */
export function checkAddNoise(
  className: string,
  x0: unknown,
  noise: unknown,
  sigmas: unknown,
): { x0: tf.Tensor; noise: tf.Tensor; sigmas: number | number[] } {
  const what = `${className}.addNoise`;
  if (!(x0 instanceof tf.Tensor) || x0.isDisposed) {
    throw new InvalidArgumentError(`${what}: x0: expected a float32 tensor, got ${show(x0)}`);
  }
  if (!(noise instanceof tf.Tensor) || noise.isDisposed) {
    throw new InvalidArgumentError(`${what}: noise: expected a float32 tensor, got ${show(noise)}`);
  }
  if (x0.dtype !== 'float32' || noise.dtype !== 'float32') {
    throw new InvalidArgumentError(
      `${what}: expected float32 x0 and noise, got ${x0.dtype} and ${noise.dtype}`,
    );
  }
  if (!sameShape(x0.shape, noise.shape)) {
    throw new InvalidArgumentError(
      `${what}: noise: expected the shape of x0 ${formatShape(x0.shape)}, got ${formatShape(noise.shape)}`,
    );
  }
  const inRange = (s: unknown) => typeof s === 'number' && Number.isFinite(s) && s >= 0 && s <= 1;
  if (typeof sigmas === 'number') {
    if (!inRange(sigmas))
      throw new InvalidArgumentError(`${what}: sigmas: expected a sigma in [0, 1], got ${show(sigmas)}`);
    return { x0, noise, sigmas };
  }
  if (!Array.isArray(sigmas) || x0.rank === 0 || sigmas.length !== x0.shape[0] || !sigmas.every(inRange)) {
    throw new InvalidArgumentError(
      `${what}: sigmas: expected one sigma in [0, 1] or an array of ${x0.rank === 0 ? 'them' : `${x0.shape[0]} (one per batch element of x0 ${formatShape(x0.shape)})`}, got ${show(sigmas)}`,
    );
  }
  return { x0, noise, sigmas: sigmas as number[] };
}

/** Brands a list of numbers checked by the caller. */
export function asSigmas(values: readonly number[]): readonly Sigma[] {
  return Object.freeze([...values]) as readonly Sigma[];
}

export function asTimesteps(values: readonly number[]): readonly Timestep[] {
  return Object.freeze([...values]) as readonly Timestep[];
}

/** Solves A x = b (small, dense) by Gaussian elimination with partial pivoting, in double precision. */
export function solveLinear(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i] as number]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    }
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    const p = m[col]![col]!;
    if (p === 0)
      throw new InvalidArgumentError('solveLinear: singular system (two steps at the same noise level?)');
    for (let r = col + 1; r < n; r++) {
      const f = m[r]![col]! / p;
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= m[r]![c]! * x[c]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}
