/**
 * Training noise levels for PAVRM (docs/method.md §3, §4). This mirrors the reference's FlowMatchDiscrete training
 * sampler (`get_train_timestep_and_sigma` of HY-Video-PRFL): a 1000-step grid
 * sigmas = shift(linspace(1, 0, 1001)) with shift s: s x / (1 + (s - 1) x), an index drawn as
 * idx = floor(1000 u), sigma = sigmas[idx], timestep = trunc(sigma * 1000).
 *
 * @prfl/schedulers has the same sampler; @prfl/reward depends on @prfl/tensor only, so the few lines
 * live here too, kept in sync deliberately (diffusers' style: duplication over coupling).
 */
import {
  type Generator,
  InvalidArgumentError,
  type Sigma,
  sigma as toSigma,
  type Timestep,
  timestep as toTimestep,
} from '@prfl/tensor';

/**
 * How training sigmas are drawn:
 * - `uniform-index` (the reference's default and ours): u ~ U(0, 1), idx = floor(1000 u) on the shifted
 *   grid; with shift 5 half the samples have sigma > 0.833.
 * - `logit-normal`: the reference's other scheme, u = sigmoid(N(mean, std)) then the same grid index.
 * - `uniform`: sigma ~ U(0, 1) directly (no grid, no shift): every noise level equally often.
 * - `fixed`: every sample at one sigma (e.g. 0 to train a reward on clean inputs, like the pixel reward).
 */
export type SigmaSampler =
  | { kind: 'uniform-index'; shift?: number; numTrainTimesteps?: number }
  | { kind: 'logit-normal'; mean?: number; std?: number; shift?: number; numTrainTimesteps?: number }
  | { kind: 'uniform' }
  | { kind: 'fixed'; sigma: number };

/** PRFL's shift (docs/method.md §2): 5.0 everywhere. */
export const PRFL_SHIFT = 5;

/** The reference's default: uniform index on the shift-5, 1000-step grid. */
export const REFERENCE_SIGMA_SAMPLER: SigmaSampler = Object.freeze({
  kind: 'uniform-index',
  shift: PRFL_SHIFT,
});

/** Shifted noise level: s * sigma / (1 + (s - 1) * sigma). */
export function shiftSigma(value: number, shift: number): number {
  return (shift * value) / (1 + (shift - 1) * value);
}

/**
 * The reference's training grid: `numTrainTimesteps + 1` sigmas from 1 down to 0, shifted, computed in
 * float32 as torch does (linspace then the shift formula), so grid values equal the reference's.
 */
export function trainingSigmaGrid(shift = PRFL_SHIFT, numTrainTimesteps = 1000): Float32Array {
  if (!Number.isInteger(numTrainTimesteps) || numTrainTimesteps < 1) {
    throw new InvalidArgumentError(
      `numTrainTimesteps: expected a positive integer, got ${String(numTrainTimesteps)}`,
    );
  }
  if (!Number.isFinite(shift) || shift <= 0) {
    throw new InvalidArgumentError(`shift: expected a positive number, got ${String(shift)}`);
  }
  const n = numTrainTimesteps;
  const grid = new Float32Array(n + 1);
  const f = Math.fround;
  const step = f(-1 / n);
  const halfway = Math.floor((n + 1) / 2);
  for (let i = 0; i <= n; i++) {
    // torch.linspace(1, 0, n + 1) in float32 fills the first half as start + step * i and the second
    // as end - step * (steps - 1 - i) (ATen's RangeFactories kernel); then the shift, op by op in float32.
    const x = i < halfway ? f(1 + f(step * i)) : f(0 - f(step * (n - i)));
    grid[i] = f(f(shift * x) / f(1 + f((shift - 1) * x)));
  }
  grid[n] = 0;
  return grid;
}

/** One drawn noise level per batch element and the timestep value the backbone reads for it. */
export interface SampledNoiseLevels {
  sigmas: Sigma[];
  timesteps: Timestep[];
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/**
 * Draws `count` training noise levels with `sampler` from `generator` (seeded JS randomness: the same
 * draws on every backend). The timestep is trunc(sigma * 1000), what the reference's integer grid feeds
 * the DiT.
 *
 * @throws InvalidArgumentError for an unknown sampler or bad parameters.
 */
export function sampleTrainingSigmas(
  generator: Generator,
  count: number,
  sampler: SigmaSampler = REFERENCE_SIGMA_SAMPLER,
): SampledNoiseLevels {
  if (!Number.isInteger(count) || count < 0) {
    throw new InvalidArgumentError(`count: expected a non-negative integer, got ${String(count)}`);
  }
  const sigmas: Sigma[] = [];
  const timesteps: Timestep[] = [];
  const push = (s: number) => {
    const value = toSigma(clamp01(s));
    sigmas.push(value);
    // float32 product then truncation, as the reference's int64 cast of a float32 tensor.
    timesteps.push(toTimestep(Math.trunc(Math.fround(value * 1000))));
  };
  switch (sampler?.kind) {
    case 'uniform-index':
    case 'logit-normal': {
      const n = sampler.numTrainTimesteps ?? 1000;
      const grid = trainingSigmaGrid(sampler.shift ?? PRFL_SHIFT, n);
      for (let i = 0; i < count; i++) {
        let u: number;
        if (sampler.kind === 'uniform-index') u = generator.nextDouble();
        else {
          const mean = sampler.mean ?? 0;
          const std = sampler.std ?? 1;
          const z = generator.normalArray(1, mean, std)[0] as number;
          u = 1 / (1 + Math.exp(-z));
        }
        // u < 1 always for uniforms; a sigmoid can round to 1, which would index past the grid's end.
        const idx = Math.min(n - 1, Math.floor(u * n));
        push(grid[idx] as number);
      }
      break;
    }
    case 'uniform':
      for (let i = 0; i < count; i++) push(generator.nextDouble());
      break;
    case 'fixed': {
      const s = toSigma(sampler.sigma);
      for (let i = 0; i < count; i++) push(s);
      break;
    }
    default:
      throw new InvalidArgumentError(
        `sigma sampler: expected kind 'uniform-index', 'logit-normal', 'uniform' or 'fixed', got ${JSON.stringify(sampler)}`,
      );
  }
  return { sigmas, timesteps };
}
