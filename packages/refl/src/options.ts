/**
 * The hyperparameters of a PRFL run and their defaults, which are the paper's and the reference's
 * (docs/method.md section 5): AdamW lr 5e-6, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, constant lr,
 * accumulation 5, clip 1.0, text dropout 0.1, reward weight 0.1 with the hinge at 2, SFT weight 1, the
 * 40-step shift-5 UniPC rollout, k uniform in {0..N-2}, the shift-5 training grid for the SFT term.
 */
import { assertFiniteInRange, InvalidArgumentError } from '@prfl/tensor';
import { type LoraOptions, type ResolvedLoraOptions, resolveLoraOptions } from './lora/config.js';
import { checkRewardLossForm, type RewardLossForm } from './reward-loss.js';
import type { StepRange } from './k-range.js';
import { SFT_WEIGHTINGS, type SftWeighting } from './sample-weights.js';
import { checkTrainableSelection, type TrainableSelection } from './trainable.js';

/**
 * 'once-per-window' (default): one optimizer update per accumulation window of `accumulationSteps`
 * micro-steps, on the window's mean gradient clipped once.
 * 'reference': what HY-Video-PRFL's train_prfl.py does. Every backward adds loss / GA to the gradient
 * buffer and clips the buffer (clip_grad_norm_ after every backward); at a window boundary it calls
 * optimizer.step() in both sub-steps: the first update applies the window's SFT gradients plus all but
 * the last reward gradient, the second only the boundary's reward gradient. Its step counter starts at 1
 * and the boundary is (step + 1) % GA == 0, so the first window has GA - 1 micro-steps.
 */
export type UpdateSchedule = 'once-per-window' | 'reference';

/** Everything of a PRFL run that is a number or a choice (the models come separately). */
export interface PrflOptions {
  /** AdamW learning rate. Paper: 5e-6. */
  lr?: number;
  /** Paper: [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Paper: 1e-8. */
  eps?: number;
  /** AdamW decoupled weight decay. Paper: 0.01. */
  weightDecay?: number;
  /** Factor on lr before the update numbered `update` (0 for the first). Default constant 1 (paper). */
  lrSchedule?: (update: number) => number;
  /** Micro-steps per optimizer update. Paper: 5. */
  accumulationSteps?: number;
  /** Global L2 gradient-norm clip; null for none. Paper: 1.0. */
  maxGradNorm?: number | null;
  /** See UpdateSchedule. Default 'once-per-window'. */
  updateSchedule?: UpdateSchedule;
  /** Weight of the flow-matching SFT term; 0 drops it (the paper's "without SFT" rows). Default 1. */
  sftWeight?: number;
  /** lambda, the reward term's weight. Paper: 0.1. */
  rewardWeight?: number;
  /** Default 'hinge', the reference's relu(target - sigmoid(r)). */
  rewardLoss?: RewardLossForm;
  /** The hinge's target. Reference: 2. */
  hingeTarget?: number;
  /** Which step k the reward step trains. Default 'full' ({0..N-2}). */
  stepRange?: StepRange;
  /** Steps of the rollout schedule. Paper: 40. */
  numSteps?: number;
  /** Shift of the rollout schedule. Paper: 5. */
  shift?: number;
  /** Shift of the SFT term's 1000-step training grid. Reference: 5. */
  trainingShift?: number;
  /** Probability of replacing a sample's text by the null conditioning (both terms). Reference: 0.1. */
  textDropout?: number;
  /**
   * A loss term above this is clamped (zero gradient, as torch.clamp in the reference: 1e6); null: never.
   */
  maxLoss?: number | null;
  /** Seed of every random draw of the run (text dropout, SFT noise, k, rollout noise). Default 0. */
  seed?: number;
  /** Record peak tensor memory per phase (one compare per allocated tensor). Default true. */
  measureMemory?: boolean;
  /**
   * What the reward reads: 'latent' (PRFL: x_{k+1} at t_{k+1}) or 'pixel' (RGB ReFL: x0_hat decoded by
   * the run's decoder). Default 'latent'.
   */
  readout?: 'latent' | 'pixel';
  /** RGB ReFL: decode the first latent frame only (the paper; all frames ran out of memory) or all. */
  decodeFrames?: 'first' | 'all';
  /** The SFT term's per-video weights: 'uniform' (default) or reward-weighted regression. */
  sftWeighting?: SftWeighting;
  /** Temperature of 'reward-softmax' weighting. Default 1. */
  rwrTemperature?: number;
  /** Weight of the anchor term (needs an anchor model); squared velocity difference. Default 0.1. */
  anchorWeight?: number;
  /** Keep an EMA of the trained weights with this decay (the reference's: 0.99); null: none (default). */
  emaDecay?: number | null;
  /** Normalise the reward logits by running mean and std before the loss. Default false. */
  normalizeReward?: boolean;
  /** Momentum of the running reward statistics. Default 0.99. */
  rewardNormMomentum?: number;
  /** Which generator variables train: 'all' (default), a block range or name globs (see trainable.ts). */
  trainable?: TrainableSelection;
  /**
   * Train LoRA adapters on the generator's Linear layers instead of its weights (the reference's
   * model.lora: rank 128, alpha = rank, targets q, k, v, o). null (default): no LoRA.
   */
  lora?: LoraOptions | null;
  /**
   * Per-block gradient checkpointing of the taped generator forward passes (the SFT term's and step k's):
   * false or null (default), true (one block per segment) or { blocksPerSegment }. Needs a generator with
   * `segments(x, t, conditioning, { blocksPerSegment })`, as WanDiT has.
   */
  gradientCheckpointing?: boolean | { readonly blocksPerSegment: number } | null;
}

export type ResolvedPrflOptions = Required<
  Omit<PrflOptions, 'lrSchedule' | 'maxGradNorm' | 'maxLoss' | 'emaDecay' | 'lora' | 'gradientCheckpointing'>
> & {
  lrSchedule: ((update: number) => number) | null;
  maxGradNorm: number | null;
  maxLoss: number | null;
  emaDecay: number | null;
  lora: ResolvedLoraOptions | null;
  /** null: one plain tape. */
  gradientCheckpointing: { readonly blocksPerSegment: number } | null;
};

/** The paper's and the reference's values. */
export const PRFL_DEFAULTS: Readonly<Omit<ResolvedPrflOptions, 'lrSchedule'>> = Object.freeze({
  lr: 5e-6,
  betas: Object.freeze([0.9, 0.999] as const),
  eps: 1e-8,
  weightDecay: 0.01,
  accumulationSteps: 5,
  maxGradNorm: 1.0,
  updateSchedule: 'once-per-window' as UpdateSchedule,
  sftWeight: 1,
  rewardWeight: 0.1,
  rewardLoss: 'hinge' as RewardLossForm,
  hingeTarget: 2,
  stepRange: 'full' as StepRange,
  numSteps: 40,
  shift: 5,
  trainingShift: 5,
  textDropout: 0.1,
  maxLoss: 1e6,
  seed: 0,
  measureMemory: true,
  readout: 'latent' as 'latent' | 'pixel',
  decodeFrames: 'first' as 'first' | 'all',
  sftWeighting: 'uniform' as SftWeighting,
  rwrTemperature: 1,
  anchorWeight: 0.1,
  emaDecay: null,
  normalizeReward: false,
  rewardNormMomentum: 0.99,
  trainable: 'all' as TrainableSelection,
  lora: null,
  gradientCheckpointing: null,
});

/** Fills in defaults and checks every value; errors name the option, what it accepts and what arrived. */
export function resolvePrflOptions(options: PrflOptions = {}): ResolvedPrflOptions {
  const o = { ...PRFL_DEFAULTS, ...definedOnly(options) } as ResolvedPrflOptions;
  assertFiniteInRange('lr', o.lr, 0);
  assertFiniteInRange('eps', o.eps, 0);
  assertFiniteInRange('weightDecay', o.weightDecay, 0);
  if (!Array.isArray(o.betas) || o.betas.length !== 2 || o.betas.some((b) => !(b >= 0 && b < 1))) {
    throw new InvalidArgumentError(`betas: expected two numbers in [0, 1), got ${JSON.stringify(o.betas)}`);
  }
  if (options.lrSchedule !== undefined && typeof options.lrSchedule !== 'function') {
    throw new InvalidArgumentError(
      `lrSchedule: expected a function (update) => factor, got ${typeof options.lrSchedule}`,
    );
  }
  o.lrSchedule = options.lrSchedule ?? null;
  positiveInteger('accumulationSteps', o.accumulationSteps);
  if (o.maxGradNorm !== null) assertFiniteInRange('maxGradNorm', o.maxGradNorm, 0);
  if (o.maxLoss !== null) assertFiniteInRange('maxLoss', o.maxLoss, 0);
  if (o.updateSchedule !== 'once-per-window' && o.updateSchedule !== 'reference') {
    throw new InvalidArgumentError(
      `updateSchedule: expected 'once-per-window' or 'reference', got ${JSON.stringify(o.updateSchedule)}`,
    );
  }
  assertFiniteInRange('sftWeight', o.sftWeight, 0);
  assertFiniteInRange('rewardWeight', o.rewardWeight, 0);
  checkRewardLossForm(o.rewardLoss);
  assertFiniteInRange('hingeTarget', o.hingeTarget);
  positiveInteger('numSteps', o.numSteps);
  assertFiniteInRange('shift', o.shift, Number.MIN_VALUE);
  assertFiniteInRange('trainingShift', o.trainingShift, Number.MIN_VALUE);
  assertFiniteInRange('textDropout', o.textDropout, 0, 1);
  if (!Number.isSafeInteger(o.seed)) {
    throw new InvalidArgumentError(`seed: expected a safe integer, got ${String(o.seed)}`);
  }
  for (const key of ['measureMemory', 'normalizeReward'] as const) {
    if (typeof o[key] !== 'boolean') {
      throw new InvalidArgumentError(`${key}: expected true or false, got ${String(o[key])}`);
    }
  }
  oneOf('readout', o.readout, ['latent', 'pixel']);
  oneOf('decodeFrames', o.decodeFrames, ['first', 'all']);
  oneOf('sftWeighting', o.sftWeighting, SFT_WEIGHTINGS);
  assertFiniteInRange('rwrTemperature', o.rwrTemperature, Number.MIN_VALUE);
  assertFiniteInRange('anchorWeight', o.anchorWeight, 0);
  if (o.emaDecay !== null) assertFiniteInRange('emaDecay', o.emaDecay, 0, 1);
  assertFiniteInRange('rewardNormMomentum', o.rewardNormMomentum, 0, 1);
  checkTrainableSelection(o.trainable);
  o.lora = options.lora == null ? null : resolveLoraOptions(options.lora);
  if (o.lora !== null && o.trainable !== 'all') {
    throw new InvalidArgumentError(
      `trainable: with lora, choose the adapted layers with lora.targetModules and lora.blocks; expected 'all', got ${JSON.stringify(o.trainable)}`,
    );
  }
  o.gradientCheckpointing = resolveCheckpointing(options.gradientCheckpointing);
  if (o.sftWeight === 0 && o.rewardWeight === 0) {
    throw new InvalidArgumentError('sftWeight and rewardWeight: expected at least one > 0, got both 0');
  }
  return o;
}

function resolveCheckpointing(
  value: PrflOptions['gradientCheckpointing'],
): { blocksPerSegment: number } | null {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) return { blocksPerSegment: 1 };
  const per = (value as { blocksPerSegment?: unknown } | null)?.blocksPerSegment;
  if (typeof value !== 'object' || value === null || !Number.isInteger(per) || (per as number) < 1) {
    throw new InvalidArgumentError(
      `gradientCheckpointing: expected true, false or { blocksPerSegment: a positive integer }, got ${JSON.stringify(value)}`,
    );
  }
  return { blocksPerSegment: per as number };
}

function oneOf(what: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(value as string)) {
    throw new InvalidArgumentError(
      `${what}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
}

function positiveInteger(what: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${what}: expected a positive integer, got ${String(value)}`);
  }
}

/** The options without keys set to undefined, so `{ lr: undefined }` keeps the default. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
