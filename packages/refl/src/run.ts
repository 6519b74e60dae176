/**
 * Everything a PRFL step reads and updates, built once: the models, the rollout schedule, the variables
 * that train (the generator's trainable ones, passed explicitly to every tape so the frozen reward gets
 * no gradient), AdamW with the paper's hyperparameters, the accumulation window, three seeded random
 * streams and the memory meter. `prflStep` takes it; `PrflTrainer` builds, owns and checkpoints it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  type Conditioning,
  Generator,
  InvalidArgumentError,
  type LatentRewardModel,
  MemoryMeter,
  type Schedule,
  type Scheduler,
  type VelocityModel,
} from '@prfl/tensor';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import { isSegmentedVelocityModel } from './checkpointing/velocity-grads.js';
import { GradientWindow } from './gradient-window.js';
import { WeightEma } from './guards/ema.js';
import { RewardNormalizer } from './guards/reward-normalizer.js';
import { resolveStepRange } from './k-range.js';
import { type AdaptableVelocityModel, isLinearAdapterHost } from './lora/adapter-host.js';
import { LoraAdapters } from './lora/lora-adapters.js';
import { type PrflOptions, type ResolvedPrflOptions, resolvePrflOptions } from './options.js';
import { selectTrainable } from './trainable.js';
import type { LatentDecoder } from './types.js';

/** Which term a gradient map belongs to, for `inspectGradients`. */
export type GradientTerm = 'sft' | 'reward';

/** The models and callbacks of a run: what is not a number. */
export interface PrflComponents {
  /** The generator being fine-tuned. Its variables with `trainable` set are what trains. */
  generator: VelocityModel;
  /**
   * The frozen reward (PAVRM): scores x_{k+1} at t_{k+1}; with readout 'pixel', a pixel reward scoring
   * decoded frames. Its variables never get a gradient. Not needed for SFT alone (rewardWeight 0).
   */
  reward?: LatentRewardModel;
  /** RGB ReFL (readout 'pixel'): the frozen decoder x0_hat goes through, with gradient. */
  decoder?: LatentDecoder;
  /** A frozen copy of the base generator the anchor term keeps the velocity close to. */
  anchorModel?: VelocityModel;
  /** Default `new FlowUniPCScheduler()` (Wan2.1's sampler, built with shift 1). */
  scheduler?: Scheduler<unknown>;
  /** Default `scheduler.schedule(numSteps, { shift })`: 40 steps, shift 5, t = [999, 994, ..., 208, 113]. */
  schedule?: Schedule;
  /** The unconditional text embedding text dropout swaps in ([1 or B, L, D]); needed when textDropout > 0. */
  nullConditioning?: Conditioning;
  /**
   * The model that rolls out steps 0..k-1 without gradient. Default: the generator itself (the reference).
   * Another model (a frozen copy, an EMA) makes x_k independent of the weights being trained.
   */
  rolloutModel?: VelocityModel;
  /** Called with each term's raw gradients (by variable name) before accumulation; disposed after the call. */
  inspectGradients?: (term: GradientTerm, grads: Readonly<Record<string, tf.Tensor>>) => void;
}

/** The random streams of a run: one per purpose, so a term's draws do not depend on another's options. */
export interface PrflRandom {
  /** Text dropout. */
  data: Generator;
  /** The SFT term's noise levels and eps. */
  sft: Generator;
  /** k and the rollout's starting noise. */
  rollout: Generator;
}

/** What the reward reads: x_{k+1} (PRFL) or decoded x0_hat (RGB ReFL). */
export type Readout =
  | { readonly kind: 'latent' }
  | { readonly kind: 'pixel'; readonly decoder: LatentDecoder; readonly frames: 'first' | 'all' };

export interface PrflRun {
  readonly generator: VelocityModel;
  /** Null only for SFT alone (rewardWeight 0, uniform weighting). */
  readonly reward: LatentRewardModel | null;
  readonly readout: Readout;
  /** The anchor term's frozen base model and weight; null without one. */
  readonly anchor: { readonly model: VelocityModel; readonly weight: number } | null;
  readonly ema: WeightEma | null;
  readonly normalizer: RewardNormalizer | null;
  readonly rolloutModel: VelocityModel;
  readonly scheduler: Scheduler<unknown>;
  readonly schedule: Schedule;
  readonly nullConditioning: Conditioning | undefined;
  readonly inspectGradients: PrflComponents['inspectGradients'];
  readonly options: ResolvedPrflOptions;
  /** Inclusive bounds of k. */
  readonly stepRange: readonly [number, number];
  /**
   * What trains, the varList of every tape: the generator's variables chosen by `options.trainable`, or
   * the LoRA adapters' when `options.lora` is set.
   */
  readonly variables: readonly tf.Variable[];
  /** The LoRA adapters on the generator (created, attached and owned by the run), or null. */
  readonly lora: LoraAdapters | null;
  /**
   * What a checkpoint's model file holds, by stable name: the adapters with LoRA (the base weights never
   * change), else every generator variable.
   */
  readonly checkpointVariables: ReadonlyMap<string, tf.Variable>;
  readonly optimizer: AdamW;
  readonly window: GradientWindow;
  readonly random: PrflRandom;
  readonly meter: MemoryMeter;
  /** Micro-steps taken. */
  microSteps: number;
  /** Optimizer updates applied. */
  updates: number;
  /** Micro-steps skipped because a loss or gradient was NaN/Inf. */
  skippedSteps: number;
  /** Updates AdamW skipped because the window's gradient was not finite. */
  skippedUpdates: number;
}

function isVelocityModel(m: unknown): m is VelocityModel {
  const v = m as Partial<VelocityModel> | null;
  return (
    typeof v?.predictVelocity === 'function' &&
    typeof v.namedVariables === 'function' &&
    Number.isInteger(v.latentChannels)
  );
}

/** The three random streams of a seed. */
export function prflRandom(seed: number): PrflRandom {
  const base = new Generator(`prfl/${seed}`);
  return { data: base.derive('text-dropout'), sft: base.derive('sft'), rollout: base.derive('rollout') };
}

/**
 * Builds a run. @throws InvalidArgumentError for a model that is not a VelocityModel / LatentRewardModel, a
 * generator with nothing to train, a reward that shares variables with the generator, a schedule too
 * short for the step range, or a bad option (named).
 */
export function createPrflRun(components: PrflComponents, options: PrflOptions = {}): PrflRun {
  const o = resolvePrflOptions(options);
  const { generator, reward } = components ?? ({} as PrflComponents);
  if (!isVelocityModel(generator)) {
    throw new InvalidArgumentError(
      'generator: expected a VelocityModel (predictVelocity, namedVariables, latentChannels)',
    );
  }
  const needsReward = o.rewardWeight > 0 || o.sftWeighting !== 'uniform';
  if (
    (needsReward || reward !== undefined) &&
    (typeof reward?.score !== 'function' || typeof reward.namedVariables !== 'function')
  ) {
    throw new InvalidArgumentError(
      `reward: expected a LatentRewardModel (score, namedVariables)${needsReward ? ` (rewardWeight ${o.rewardWeight}, sftWeighting '${o.sftWeighting}')` : ''}, got ${typeof reward}`,
    );
  }
  if (o.readout === 'pixel' && typeof components.decoder?.decode !== 'function') {
    throw new InvalidArgumentError(
      `decoder: readout 'pixel' (RGB ReFL) needs a LatentDecoder (decode(latents) -> frames), got ${typeof components.decoder}`,
    );
  }
  const anchorModel = components.anchorModel;
  if (anchorModel !== undefined && !isVelocityModel(anchorModel)) {
    throw new InvalidArgumentError('anchorModel: expected a VelocityModel');
  }
  const rolloutModel = components.rolloutModel ?? generator;
  if (!isVelocityModel(rolloutModel)) {
    throw new InvalidArgumentError('rolloutModel: expected a VelocityModel');
  }
  if (o.lora !== null && !isLinearAdapterHost(generator)) {
    throw new InvalidArgumentError(
      'lora: the generator has no setLinearAdapter(adapter) (the Linear-layer hook LoRA attaches to; WanDiT has one)',
    );
  }
  if (o.gradientCheckpointing !== null && !isSegmentedVelocityModel(generator)) {
    throw new InvalidArgumentError(
      'gradientCheckpointing: the generator has no segments(x, timesteps, conditioning, { blocksPerSegment }) (WanDiT has)',
    );
  }
  // With LoRA only the adapters train; otherwise the selection picks among the flagged variables.
  const variables = o.lora !== null ? [] : selectTrainable(generator.namedVariables(), o.trainable);
  if (o.lora === null && variables.length === 0) {
    throw new InvalidArgumentError(
      'generator: no trainable variables (every variable has trainable = false)',
    );
  }
  for (const [what, model] of [
    ['reward', reward],
    ['anchorModel', anchorModel],
  ] as const) {
    const frozen = new Set(model?.namedVariables().values() ?? []);
    const shared = variables.filter((v) => frozen.has(v)).map((v) => v.name);
    if (shared.length > 0) {
      throw new InvalidArgumentError(
        `${what}: shares variables with the generator (${shared.slice(0, 3).join(', ')}); it must be a frozen copy (e.g. WanDiT.truncate, which copies)`,
      );
    }
  }
  const scheduler = components.scheduler ?? (new FlowUniPCScheduler() as Scheduler<unknown>);
  const schedule = components.schedule ?? scheduler.schedule(o.numSteps, { shift: o.shift });
  const stepRange = resolveStepRange(o.stepRange, schedule.numSteps);
  // Created last, once every check has passed: the adapters attach to the generator on creation.
  const lora = o.lora === null ? null : new LoraAdapters(generator as AdaptableVelocityModel, o.lora);
  const trained = lora === null ? variables : [...lora.namedVariables().values()];
  const optimizer = new AdamW([...trained], {
    lr: o.lr,
    betas: [o.betas[0], o.betas[1]],
    eps: o.eps,
    weightDecay: o.weightDecay,
    // A window whose gradient is NaN/Inf is skipped (counted), never applied: the weights stay as they were.
    nonFinite: 'skip',
  });
  return {
    generator,
    reward: reward ?? null,
    readout:
      o.readout === 'pixel'
        ? { kind: 'pixel', decoder: components.decoder as LatentDecoder, frames: o.decodeFrames }
        : { kind: 'latent' },
    anchor: anchorModel ? { model: anchorModel, weight: o.anchorWeight } : null,
    ema: o.emaDecay === null ? null : new WeightEma(trained, o.emaDecay),
    normalizer: o.normalizeReward ? new RewardNormalizer(o.rewardNormMomentum) : null,
    rolloutModel,
    scheduler,
    schedule,
    nullConditioning: components.nullConditioning,
    inspectGradients: components.inspectGradients,
    options: o,
    stepRange,
    variables: trained,
    lora,
    checkpointVariables: lora === null ? generator.namedVariables() : lora.namedVariables(),
    optimizer,
    window: new GradientWindow(),
    random: prflRandom(o.seed),
    meter: new MemoryMeter({ enabled: o.measureMemory }),
    microSteps: 0,
    updates: 0,
    skippedSteps: 0,
    skippedUpdates: 0,
  };
}

/**
 * Frees what the run owns (optimizer moments, the window's gradients, and LoRA adapters it created, which
 * are detached from the generator: save or merge them first), not the models.
 */
export function disposePrflRun(run: PrflRun): void {
  run.window.reset();
  run.ema?.dispose();
  run.optimizer.dispose();
  run.lora?.dispose();
}
