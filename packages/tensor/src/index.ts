export {
  BACKEND_NAMES,
  currentBackend,
  describeBackend,
  initBackend,
  isNode,
  shutdownBackend,
  WASM_THREADS_ENV,
} from './backend.js';
export type { BackendInfo, BackendName, GpuAdapterDescription, InitBackendOptions } from './backend.js';
export {
  assertFiniteInRange,
  assertShape,
  BackendUnavailableError,
  CorruptFileError,
  formatShape,
  InvalidArgumentError,
  PrflError,
} from './errors.js';
export { assertFiniteTensor, assertFiniteTensors, type FiniteCheck, finiteCheckActive } from './finite.js';
export {
  latentArrayFromTorch,
  latentArrayToTorch,
  latentsFromTorch,
  latentsToTorch,
} from './latent-layout.js';
export type { LatentsToTorchOptions, LatentTypedArray, ShapedArray } from './latent-layout.js';
export { validateTimesteps } from './timesteps.js';
export type { ValidateTimestepsOptions } from './timesteps.js';
export { conv3d } from './ops/conv3d.js';
export type { Strides } from './ops/conv3d.js';
export { linear, matMul } from './ops/matmul.js';
export { installFastWasmSlice } from './ops/wasm-slice.js';
export { PRFL_GRADIENTS } from './register-gradients.js';
export { backendsUnderTest, maxAbsDiff, maxRelDiffByName } from './testing/backends.js';
export { Generator, seededNoise } from './random.js';
export type { GeneratorState } from './random.js';
export { sigma, sigmaToTimestep, stepIndex, timestep, timestepToSigma } from './types.js';
export type {
  BatchOptions,
  Branded,
  Conditioning,
  FeatureBackbone,
  LatentRewardModel,
  LatentVideo,
  PairwiseBatch,
  PointwiseBatch,
  PreferenceSource,
  Schedule,
  Scheduler,
  SchedulerStepArgs,
  SchedulerStepResult,
  Sigma,
  StepIndex,
  Timestep,
  TimestepOptions,
  TimestepsLike,
  TokenSequence,
  Trainable,
  VelocityModel,
} from './types.js';
export {
  ADAMW_DEFAULTS,
  ADAMW_STEP_COUNT_KEY,
  AdamW,
  clipByGlobalNorm,
  GradientAccumulator,
  NonFiniteGradientError,
} from './optim/index.js';
export type {
  AdamWGroupInfo,
  AdamWHyperparameters,
  AdamWOptions,
  AdamWParamGroup,
  AdamWStepResult,
  ClipByGlobalNormOptions,
  ClipByGlobalNormResult,
  GradientAccumulatorOptions,
  GradientMap,
  NonFinitePolicy,
} from './optim/index.js';
export {
  backwardThroughSegments,
  SegmentCheckpoints,
  segmentedForward,
  segmentedGradients,
} from './segmented.js';
export type {
  Activation,
  NamedGradients,
  Segment,
  SegmentBackwardOptions,
  SegmentedGradientsOptions,
  SegmentedGradientsResult,
  SegmentGradients,
  Structure,
} from './segmented.js';
export {
  assertNoLeak,
  formatBytes,
  formatMemoryTable,
  MemoryMeter,
  measureMemory,
  TensorLeakError,
} from './memory.js';
export type {
  LeakCheckOptions,
  LeakCheckResult,
  MemoryMeasurement,
  MemoryMeterOptions,
  MemoryReport,
  MemorySample,
  PhaseReport,
} from './memory.js';
export * from './safetensors/index.js';
export {
  DEFAULT_TORCH_LIMITS,
  detectWeightsFormat,
  flattenTorchTensors,
  isTorchCheckpoint,
  isTorchTensor,
  loadTorchCheckpoint,
  loadWeights,
  openTorchCheckpoint,
  openWeights,
  stripKeyPrefix,
  TORCH_STORAGE_TYPES,
  TorchTensorRef,
  UnsafePickleError,
  withoutPrefix,
} from './torch/index.js';
export type {
  LoadTorchOptions,
  LoadWeightsOptions,
  OpenTorchOptions,
  OpenWeightsOptions,
  TorchCheckpoint,
  TorchKey,
  TorchReadLimits,
  TorchTensorInfo,
  TorchValue,
  WeightsFormat,
} from './torch/index.js';
export { parseAtomicTempName, removeStaleTempFiles, writeFileAtomic } from './safetensors/atomic.js';
export type { ChunkWriter, RemoveStaleTempOptions } from './safetensors/atomic.js';
export { nodeImport } from './node/node-import.js';
export {
  packGradients,
  packRows,
  packTensor,
  shardRows,
  sliceRows,
  sumFlatGradients,
  transferOf,
  transferResult,
  unpackOwned,
  unpackTensor,
  variablesByName,
} from './parallel/replica.js';
export type {
  FlatGradients,
  PackedTensor,
  Replica,
  ReplicaRecipe,
  ReplicaTask,
  TransferResult,
} from './parallel/replica.js';
export { SharedWeights } from './parallel/shared-weights.js';
export type { SharedWeightsHandle, SharedWeightsLayout } from './parallel/shared-weights.js';
