/**
 * The other methods the PRFL loop runs, as option presets over the paper's defaults (docs/method.md sections 5
 * and 6, and the paper's comparisons in section 7):
 *
 * - SFT alone: the flow-matching term only (rewardWeight 0). Also how a generator is pretrained from
 *   scratch (with a pretraining learning rate instead of the fine-tuning 5e-6).
 * - Reward-weighted regression: SFT whose per-video squared error is weighted by the frozen reward's
 *   score of the clean video (w = B softmax(r / T) by default).
 * - RGB ReFL, the baseline: a late step k (the last third of the chain), x0_hat decoded by the VAE with
 *   gradient (first frame only, as in the paper), a pixel reward, the same hinge and SFT term.
 */
import type { PrflOptions } from './options.js';
import type { PrflComponents } from './run.js';
import { PrflTrainer, type PrflTrainerOptions } from './trainer.js';
import type { LatentDecoder } from './types.js';

export const SFT_PRESET: Readonly<PrflOptions> = Object.freeze({ rewardWeight: 0, sftWeighting: 'uniform' });

export const RWR_PRESET: Readonly<PrflOptions> = Object.freeze({
  rewardWeight: 0,
  sftWeighting: 'reward-softmax',
  rwrTemperature: 1,
});

export const RGB_REFL_PRESET: Readonly<PrflOptions> = Object.freeze({
  readout: 'pixel',
  stepRange: 'late',
  decodeFrames: 'first',
});

/** A trainer of the flow-matching SFT term alone (no reward model needed). */
export function createSftTrainer(
  components: Omit<PrflComponents, 'reward' | 'decoder' | 'anchorModel'>,
  options: PrflTrainerOptions = {},
): PrflTrainer {
  return new PrflTrainer(components, { ...options, ...SFT_PRESET });
}

/** A reward-weighted regression trainer: SFT weighted per video by the frozen reward. */
export function createRwrTrainer(
  components: PrflComponents & Required<Pick<PrflComponents, 'reward'>>,
  options: PrflTrainerOptions = {},
): PrflTrainer {
  return new PrflTrainer(components, { ...RWR_PRESET, ...options, rewardWeight: 0 });
}

/** An RGB ReFL trainer: `reward` scores decoded frames (e.g. @prfl/reward's PixelVideoReward). */
export function createRgbReflTrainer(
  components: PrflComponents & Required<Pick<PrflComponents, 'reward'>> & { decoder: LatentDecoder },
  options: PrflTrainerOptions = {},
): PrflTrainer {
  return new PrflTrainer(components, { ...RGB_REFL_PRESET, ...options, readout: 'pixel' });
}
