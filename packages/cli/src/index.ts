/**
 * @prfl/cli: the `prfl` command, and its pieces for programs that drive it (`run(argv, io)`), read its
 * config files (`resolveConfig`, `CONFIG_SCHEMA`) or its run folders (`inspectPath`; what the training
 * commands leave in theirs: `RUN_WEIGHTS_DIR`, `EVAL_FILE`, ...).
 */
export { createProgram, run, VERSION } from './program.js';
export { type CliIo, memorySink, processIo, type TextSink } from './io.js';
export {
  CONFIG_SCHEMA,
  CONFIG_SECTIONS,
  type ConfigKey,
  type ConfigType,
  type ConfigValue,
  describeExpected,
  formatValue,
  LRM_LOSSES,
  POOL_AGGREGATION,
  SCHEMA_BY_KEY,
} from './config/schema.js';
export {
  type ConfigLayer,
  checkValue,
  flattenConfig,
  mergeConfig,
  parseConfigText,
  parseSet,
  readConfigFile,
  type ResolveConfigOptions,
  ResolvedConfig,
  resolveConfig,
  setLayer,
} from './config/resolve.js';
export { closest, editDistance } from './config/suggest.js';
export { configKeysMarkdown } from './commands/config.js';
export { ConfigError, describeFailure, EXIT, InterruptedError, isUserError, UsageError } from './errors.js';
export { defaultRunDir, METRICS_FILE, RESOLVED_CONFIG_FILE, RunDir, timestampName } from './run-dir.js';
export {
  createProgress,
  type Progress,
  type ProgressMode,
  type ProgressOptions,
  progressMode,
  progressText,
} from './progress.js';
export { installInterrupt, type Interrupt } from './interrupt.js';
export {
  type InspectResult,
  inspectPath,
  formatInspect,
  type TensorSummary,
  type WeightsSummary,
} from './commands/inspect.js';
export { encodeGif, type GifOptions } from './gif.js';
export type { PretrainCall, PretrainFunction, PretrainProgressEvent } from './commands/pretrain.js';
export type { CommandContext } from './context.js';
export type { GlobalOptions } from './global-options.js';
export {
  formatTrainReward,
  TRAIN_REWARD_DEFAULTS,
  type TrainRewardCommandOptions,
  trainRewardCommand,
  type TrainRewardResult,
} from './commands/train-reward.js';
export {
  type EvalRewardCommandOptions,
  type EvalRewardResult,
  evalRewardCommand,
  formatEvalReward,
} from './commands/eval-reward.js';
export {
  formatTrain,
  type OracleRates,
  TRAIN_DEFAULTS,
  TRAIN_METHODS,
  type TrainCommandOptions,
  trainCommand,
  type TrainMethod,
  type TrainResult,
} from './commands/train.js';
export type { RewardBucketRow, RewardEvaluation } from './reward-eval.js';
export { COMMAND_FILE } from './training-run.js';
export {
  CHECKPOINTS_DIR,
  EVAL_FILE,
  GENERATIONS_FILE,
  GENERATIONS_JSON_FILE,
  PIXEL_REWARD_FILE,
  RUN_WEIGHTS_DIR,
} from './run-layout.js';
