/**
 * @prfl/cli: the `prfl` command, and its pieces for programs that drive it (`run(argv, io)`), read its
 * config files (`resolveConfig`, `CONFIG_SCHEMA`) or its run folders (`inspectPath`).
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
export { createProgress, type Progress, type ProgressMode, progressMode, progressText } from './progress.js';
export { installInterrupt, type Interrupt } from './interrupt.js';
export { type InspectResult, inspectPath, formatInspect } from './commands/inspect.js';
export { encodeGif, type GifOptions } from './gif.js';
export type { PretrainCall, PretrainFunction, PretrainProgressEvent } from './commands/pretrain.js';
