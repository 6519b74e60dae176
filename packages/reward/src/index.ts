/**
 * @prfl/reward: PAVRM, the process-aware latent video reward model (docs/method.md §4), its training, evaluation,
 * I/O and inference-time use, and a pixel-space reward for the RGB ReFL baseline.
 */
export { maxPool, meanPool } from './aggregation/pooling.js';
export { queryAttention } from './aggregation/query-attention.js';
export type { QueryAttentionOptions, QueryAttentionWeights } from './aggregation/query-attention.js';
export { addNoise } from './forward-process.js';
export {
  AGGREGATIONS,
  headParamSpecs,
  MLP_PREFIX,
  QUERY_ATTENTION_PREFIX,
  validateHeadConfig,
} from './model/head-params.js';
export type { Aggregation, HeadParamInit, HeadParamSpec, PavrmHeadConfig } from './model/head-params.js';
export { mlpHead, PAPER_HEAD_HIDDEN } from './model/mlp-head.js';
export type { LinearWeights } from './model/mlp-head.js';
export { checkHeadWeights, Pavrm } from './model/pavrm.js';
export type { PavrmConfig, PavrmOptions } from './model/pavrm.js';
export { PrecomputedFeatures } from './model/precomputed-features.js';
export { headFromStateDicts, headToStateDicts } from './io/head-io.js';
export type { HeadStateDicts, StateDict } from './io/head-io.js';
export {
  PRFL_SHIFT,
  REFERENCE_SIGMA_SAMPLER,
  sampleTrainingSigmas,
  shiftSigma,
  trainingSigmaGrid,
} from './sigma-sampling.js';
export type { SampledNoiseLevels, SigmaSampler } from './sigma-sampling.js';
export {
  assertBinaryLabels,
  assertFiniteTensor,
  assertLabelTargets,
  assertLatentVideo,
  assertTimesteps,
} from './validate.js';
export { bceWithLogits, bradleyTerryLoss } from './train/losses.js';
export { pavrmBatchGradients, pavrmTrainStep, pavrmTrainStepParallel } from './train/train-step.js';
export type {
  PavrmBatchGradients,
  PavrmGradientWorkers,
  PavrmPreparedBatch,
  PavrmStepMetrics,
  PavrmTrainRun,
} from './train/train-step.js';
export { packPavrmShard, pavrmReplica, pavrmShardGradients } from './parallel/replica.js';
export type { PavrmReplicaSpec, PavrmShardArgs, PavrmShardResult } from './parallel/replica.js';
export { CHECKPOINT_FILE, CHECKPOINT_FORMAT, PavrmTrainer } from './train/trainer.js';
export type {
  FitOptions,
  FitResult,
  PavrmCheckpointState,
  PavrmTrainerOptions,
  TrainableReward,
  TrainingPosition,
} from './train/trainer.js';
export { tensorPairwiseSource, tensorPointwiseSource } from './train/tensor-source.js';
export { disposeBatch } from './train/batch.js';
export { binaryMetrics, rocAuc, withinGroupAuc } from './eval/metrics.js';
export type { BinaryMetrics } from './eval/metrics.js';
export { evaluateBySigmaBucket, formatBucketTable, PAPER_SIGMA_BUCKETS } from './eval/evaluate.js';
export type {
  BucketResult,
  EvalData,
  EvaluateOptions,
  SigmaBucket,
  SigmaBucketEvaluation,
} from './eval/evaluate.js';
export {
  loadReward,
  loadRewardFrom,
  loadRewardHead,
  MLP_FILE,
  PAVRM_CONFIG_FILE,
  PAVRM_FORMAT,
  QUERY_ATTENTION_FILE,
  saveReward,
  serializeReward,
  torchLayoutFromFile,
  torchLayoutToFile,
  TRANSFORMER_FILE,
} from './io/reward-io.js';
export type {
  BackboneExport,
  LoadRewardOptions,
  PavrmManifest,
  RewardFileOpener,
  SaveRewardOptions,
  WeightLayout,
} from './io/reward-io.js';
export { disposeConditioning, gatherConditioning } from './conditioning.js';
export { pruneByReward, sampleWithEarlyPruning, selectByReward } from './inference/process-reward.js';
export type {
  ComputeReport,
  EarlyPruningOptions,
  EarlyPruningResult,
  KeepRule,
  PruneOptions,
  PruneResult,
  PruningDecision,
  SamplingStep,
} from './inference/process-reward.js';
export { PIXEL_REWARD_DEFAULTS, PixelVideoReward } from './pixel/pixel-video-reward.js';
export type { PixelVideoRewardConfig, PixelVideoRewardOptions } from './pixel/pixel-video-reward.js';
export { loadPixelReward, savePixelReward, serializePixelReward } from './pixel/pixel-io.js';
