/**
 * The discrete-time (DDPM-family) noise tables DDIM and DDPM share, as diffusers builds them: betas from a
 * named schedule, alpha_bar = cumprod(1 - beta), and the inference timesteps for a spacing. Computed in
 * double precision (diffusers keeps float32 tables; they agree to about 1e-7 relative).
 *
 * The noise level of this family under our Sigma type is sigma = sqrt(1 - alpha_bar), in [0, 1]:
 * x_t = sqrt(1 - sigma^2) x0 + sigma eps.
 */
import { InvalidArgumentError } from '@prfl/tensor';
import { linspace } from './common.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

export const BETA_SCHEDULES: readonly BetaSchedule[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2'];
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample'];

/** The Glide cosine schedule: beta_i = min(1 - abar((i + 1) / T) / abar(i / T), maxBeta). */
function betasForAlphaBar(numTrainTimesteps: number, maxBeta = 0.999): number[] {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  return Array.from({ length: numTrainTimesteps }, (_, i) =>
    Math.min(1 - alphaBar((i + 1) / numTrainTimesteps) / alphaBar(i / numTrainTimesteps), maxBeta),
  );
}

/** Rescales betas to zero terminal SNR (Lin et al. 2023, "Common diffusion noise schedules are flawed", Alg. 1). */
function rescaleZeroTerminalSnr(betas: readonly number[]): number[] {
  let cumulative = 1;
  const sqrtAlphaBar = betas.map((b) => {
    cumulative *= 1 - b;
    return Math.sqrt(cumulative);
  });
  const first = sqrtAlphaBar[0] as number;
  const last = sqrtAlphaBar[sqrtAlphaBar.length - 1] as number;
  const alphaBar = sqrtAlphaBar.map((s) => ((s - last) * (first / (first - last))) ** 2);
  return alphaBar.map((ab, i) => 1 - (i === 0 ? ab : ab / (alphaBar[i - 1] as number)));
}

export interface BetaConfig {
  readonly num_train_timesteps: number;
  readonly beta_start: number;
  readonly beta_end: number;
  readonly beta_schedule: BetaSchedule;
  readonly trained_betas: readonly number[] | null;
  readonly rescale_betas_zero_snr: boolean;
}

/** alpha_bar_t for t = 0..T-1. */
export function alphasCumprod(what: string, config: BetaConfig): number[] {
  const T = config.num_train_timesteps;
  let betas: number[];
  if (config.trained_betas !== null) {
    if (config.trained_betas.length !== T) {
      throw new InvalidArgumentError(
        `${what}: trained_betas: expected ${T} values (num_train_timesteps), got ${config.trained_betas.length}`,
      );
    }
    betas = [...config.trained_betas];
  } else if (config.beta_schedule === 'linear') {
    betas = linspace(config.beta_start, config.beta_end, T);
  } else if (config.beta_schedule === 'scaled_linear') {
    betas = linspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T).map((b) => b * b);
  } else {
    betas = betasForAlphaBar(T);
  }
  if (betas.some((b) => !(b > 0 && b < 1))) {
    throw new InvalidArgumentError(`${what}: betas: expected every beta in (0, 1), got a value outside it`);
  }
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  let cumulative = 1;
  return betas.map((b) => {
    cumulative *= 1 - b;
    return cumulative;
  });
}

/**
 * The N inference timesteps of diffusers' DDIM/DDPM set_timesteps, largest first.
 * @throws InvalidArgumentError when N > T or a timestep falls outside [0, T - 1].
 */
export function discreteTimesteps(
  what: string,
  numTrainTimesteps: number,
  numSteps: number,
  spacing: TimestepSpacing,
  stepsOffset: number,
): number[] {
  const T = numTrainTimesteps;
  const N = numSteps;
  if (N > T) {
    throw new InvalidArgumentError(
      `${what}: numSteps: expected at most num_train_timesteps = ${T} (the model was trained on ${T} timesteps), got ${N}`,
    );
  }
  let timesteps: number[];
  if (spacing === 'linspace') {
    timesteps = linspace(0, T - 1, N)
      .map((t) => roundHalfEven(t))
      .reverse();
  } else if (spacing === 'leading') {
    const ratio = Math.floor(T / N);
    timesteps = Array.from({ length: N }, (_, i) => (N - 1 - i) * ratio + stepsOffset);
  } else {
    const ratio = T / N;
    // np.round(np.arange(T, 0, -ratio)) - 1
    timesteps = Array.from({ length: N }, (_, k) => roundHalfEven(T + k * -ratio) - 1);
  }
  const bad = timesteps.find((t) => t < 0 || t > T - 1);
  if (bad !== undefined) {
    throw new InvalidArgumentError(
      `${what}: timestep ${bad} of ${spacing} spacing with steps_offset ${stepsOffset} falls outside [0, ${T - 1}]`,
    );
  }
  return timesteps;
}

/** numpy's round: halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
