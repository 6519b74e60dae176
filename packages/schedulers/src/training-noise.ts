/**
 * Noise levels for flow-matching training (the SFT term of docs/method.md §5 and PAVRM's noising of docs/method.md §4). All
 * draw from a seeded `Generator`, so a run is reproducible on every backend.
 *
 * - `sampleGridNoiseLevels`: the reference's "FlowMatchDiscrete" draw (docs/method.md §3): a uniform *index* on the
 *   shifted 1000-step grid, u ~ U(0, 1), idx = floor(1000 u), sigma = grid[idx]. With shift 5 half the
 *   samples have sigma > 0.833.
 * - `sampleUniformNoiseLevels`: sigma = shift(u).
 * - `sampleLogitNormalNoiseLevels`: sigma = shift(sigmoid(mean + std n)), n ~ N(0, 1) (SD3's choice).
 */
import type { Generator, Sigma, Timestep } from '@prfl/tensor';
import { InvalidArgumentError } from '@prfl/tensor';
import { checkShift, f32, linspace, shiftSigma, show } from './common.js';

/** One training noise level: the sigma that noises x0 and the timestep value the model reads. */
export interface NoiseLevel {
  readonly sigma: Sigma;
  readonly timestep: Timestep;
}

/** A noise level drawn from the grid, with its grid index. */
export interface GridNoiseLevel extends NoiseLevel {
  readonly index: number;
}

/** The reference's training grid. */
export interface FlowMatchTrainingGrid {
  readonly shift: number;
  /** T + 1 sigmas, shift(linspace(1, 0, T + 1)) in float32; the last is 0. */
  readonly sigmas: readonly Sigma[];
  /** T timesteps, int(sigma[:-1] * T). */
  readonly timesteps: readonly Timestep[];
}

export interface GridOptions {
  /** Default 5, PRFL's shift. */
  shift?: number;
  /** Default 1000. */
  numTrainTimesteps?: number;
}

const gridCache = new Map<string, FlowMatchTrainingGrid>();

function checkTrainSteps(what: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`${what}: numTrainTimesteps: expected a positive integer, got ${show(n)}`);
  }
  return n;
}

/**
 * The shifted 1000-step grid the reference trains on ("FlowMatchDiscrete", docs/method.md §3): sigmas =
 * shift(linspace(1, 0, T + 1)), timesteps = int(sigma[:-1] * T). The same numbers as
 * `new FlowMatchEulerScheduler({ shift }).schedule(T)`.
 */
export function flowMatchTrainingGrid(options: GridOptions = {}): FlowMatchTrainingGrid {
  const shift = checkShift('flowMatchTrainingGrid', options.shift ?? 5);
  const T = checkTrainSteps('flowMatchTrainingGrid', options.numTrainTimesteps ?? 1000);
  const key = `${shift}/${T}`;
  const cached = gridCache.get(key);
  if (cached) return cached;
  const sigmas = linspace(1, 0, T + 1).map((s) => f32(shiftSigma(s, shift)));
  const grid: FlowMatchTrainingGrid = Object.freeze({
    shift,
    sigmas: Object.freeze(sigmas) as readonly Sigma[],
    timesteps: Object.freeze(sigmas.slice(0, T).map((s) => Math.trunc(s * T))) as readonly Timestep[],
  });
  gridCache.set(key, grid);
  return grid;
}

function checkCount(what: string, count: unknown): number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(
      `${what}: count: expected a positive integer (the batch size), got ${show(count)}`,
    );
  }
  return count;
}

function checkGenerator(what: string, generator: unknown): Generator {
  const g = generator as Partial<Generator> | undefined;
  if (g === null || typeof g !== 'object' || typeof g.nextDouble !== 'function') {
    throw new InvalidArgumentError(
      `${what}: generator: expected a Generator from @prfl/tensor, got ${show(generator)}`,
    );
  }
  return generator as Generator;
}

/**
 * `count` noise levels by the reference's uniform index on the shifted grid: u ~ U(0, 1),
 * idx = floor(T u), sigma = grid.sigmas[idx], timestep = grid.timesteps[idx].
 */
export function sampleGridNoiseLevels(
  generator: Generator,
  count: number,
  options: GridOptions = {},
): GridNoiseLevel[] {
  const what = 'sampleGridNoiseLevels';
  const g = checkGenerator(what, generator);
  const n = checkCount(what, count);
  const grid = flowMatchTrainingGrid(options);
  const T = grid.timesteps.length;
  return Array.from({ length: n }, () => {
    const index = Math.min(T - 1, Math.floor(T * g.nextDouble()));
    return { index, sigma: grid.sigmas[index] as Sigma, timestep: grid.timesteps[index] as Timestep };
  });
}

export interface ContinuousOptions {
  /** Applied after drawing (default 1: none). */
  shift?: number;
  /** The timestep is sigma * numTrainTimesteps, not truncated (default 1000). */
  numTrainTimesteps?: number;
}

function level(sigma: number, shift: number, T: number): NoiseLevel {
  const s = shiftSigma(sigma, shift);
  return { sigma: s as Sigma, timestep: (s * T) as Timestep };
}

/** `count` noise levels with sigma = shift(u), u ~ U(0, 1). */
export function sampleUniformNoiseLevels(
  generator: Generator,
  count: number,
  options: ContinuousOptions = {},
): NoiseLevel[] {
  const what = 'sampleUniformNoiseLevels';
  const g = checkGenerator(what, generator);
  const n = checkCount(what, count);
  const shift = checkShift(what, options.shift ?? 1);
  const T = checkTrainSteps(what, options.numTrainTimesteps ?? 1000);
  return Array.from({ length: n }, () => level(g.nextDouble(), shift, T));
}

export interface LogitNormalOptions extends ContinuousOptions {
  /** Mean of the normal before the sigmoid (default 0). */
  mean?: number;
  /** Standard deviation of the normal before the sigmoid (default 1). */
  std?: number;
}

/** `count` noise levels with sigma = shift(sigmoid(mean + std n)), n ~ N(0, 1). */
export function sampleLogitNormalNoiseLevels(
  generator: Generator,
  count: number,
  options: LogitNormalOptions = {},
): NoiseLevel[] {
  const what = 'sampleLogitNormalNoiseLevels';
  const g = checkGenerator(what, generator);
  const n = checkCount(what, count);
  const shift = checkShift(what, options.shift ?? 1);
  const T = checkTrainSteps(what, options.numTrainTimesteps ?? 1000);
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!Number.isFinite(mean))
    throw new InvalidArgumentError(`${what}: mean: expected a finite number, got ${show(mean)}`);
  if (!Number.isFinite(std) || std <= 0) {
    throw new InvalidArgumentError(`${what}: std: expected a finite number > 0, got ${show(std)}`);
  }
  const normals = g.normalArray(n);
  return Array.from(normals, (z) => level(1 / (1 + Math.exp(-(mean + std * z))), shift, T));
}
