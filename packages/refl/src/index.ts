/**
 * @prfl/refl: reward feedback learning for video generators (docs/method.md): PRFL, the process reward
 * on noisy latents back-propagated through one denoising step; the RGB ReFL baseline through a decoder;
 * SFT alone and reward-weighted regression; with the guards, metrics and checkpoints around them.
 */
export { GradientWindow, WINDOW_COUNT_KEY } from './gradient-window.js';
export { addGrads, disposeGrads, globalNorm } from './gradients.js';
export type { Grads } from './gradients.js';
export { WeightEma } from './guards/ema.js';
export { RewardNormalizer } from './guards/reward-normalizer.js';
export type { RewardNormalizerState } from './guards/reward-normalizer.js';
export { resolveStepRange, sampleStep } from './k-range.js';
export type { StepRange } from './k-range.js';
export { PhaseClock } from './metrics.js';
export type { PhaseName, PhaseSample, PrflStepMetrics } from './metrics.js';
export { PRFL_DEFAULTS, resolvePrflOptions } from './options.js';
export type { PrflOptions, ResolvedPrflOptions, UpdateSchedule } from './options.js';
export { finishMicroStep, prflStep } from './prfl-step.js';
export type { MicroStepEnd } from './prfl-step.js';
export { parallelUnsupported, prflStepParallel } from './prfl-step-parallel.js';
export type {
  PrflGradientWorkers,
  PrflSummedTerm,
  PrflTermsInput,
  PrflTermsOutput,
} from './prfl-step-parallel.js';
export { GENERATOR_PREFIX, prflReplica, prflShardTerms, REWARD_PREFIX } from './parallel/replica.js';
export type {
  PrflReplica,
  PrflReplicaSpec,
  PrflShardArgs,
  PrflShardResult,
  PrflShardTerm,
} from './parallel/replica.js';
export { checkRewardLossForm, REWARD_LOSS_FORMS, rewardLoss } from './reward-loss.js';
export type { RewardLossForm } from './reward-loss.js';
export { batchTimesteps, rolloutTo } from './rollout.js';
export type { RolloutResult } from './rollout.js';
export { createPrflRun, disposePrflRun, prflRandom } from './run.js';
export type { GradientTerm, PrflComponents, PrflRandom, PrflRun, Readout } from './run.js';
export { SFT_WEIGHTINGS, sampleWeights } from './sample-weights.js';
export type { SftWeighting } from './sample-weights.js';
export { flowMatchingLoss, flowMatchingLossPerSample } from './sft-loss.js';
export type { SftNoiseLevel } from './sft-loss.js';
export { applyTextDropout, checkNullConditioning } from './text-dropout.js';
export type { DroppedConditioning } from './text-dropout.js';
export { clampLoss, settleTerm } from './term.js';
export type { TermResult } from './term.js';
export type { LatentDecoder, VideoBatch, VideoSource } from './types.js';
export { applyUpdate } from './update.js';
export { checkVideoBatch } from './validate.js';
export { evaluateProcessReward } from './evaluate.js';
export type { ProcessRewardEvalArgs, ProcessRewardEvaluation } from './evaluate.js';
export {
  CHECKPOINT_FILE,
  CHECKPOINT_FORMAT,
  loadCheckpoint,
  readCheckpointState,
  saveCheckpoint,
} from './checkpoint.js';
export type { DataPosition, PrflCheckpointState } from './checkpoint.js';
export {
  disposeConditioning,
  disposeVideoBatch,
  epochOrder,
  gatherConditioning,
  tensorVideoSource,
} from './data/tensor-source.js';
export { PrflTrainer } from './trainer.js';
export type { FitOptions, FitResult, PrflTrainerOptions, TrainingPosition } from './trainer.js';
export {
  createRgbReflTrainer,
  createRwrTrainer,
  createSftTrainer,
  RGB_REFL_PRESET,
  RWR_PRESET,
  SFT_PRESET,
} from './presets.js';
export { blockIndexOf, checkTrainableSelection, globToRegExp, selectTrainable } from './trainable.js';
export type { TrainableSelection } from './trainable.js';
export * from './lora/index.js';
export { isSegmentedVelocityModel, velocityGrads } from './checkpointing/velocity-grads.js';
export type {
  CheckpointingMode,
  SegmentedVelocityModel,
  VelocityGradsArgs,
  VelocitySegmentChain,
} from './checkpointing/velocity-grads.js';
export { sftGrads } from './checkpointing/sft-grads.js';
export type { SftGradsArgs } from './checkpointing/sft-grads.js';
