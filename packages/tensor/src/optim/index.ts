export { GradientAccumulator } from './accumulate.js';
export type { GradientAccumulatorOptions } from './accumulate.js';
export { ADAMW_DEFAULTS, ADAMW_STEP_COUNT_KEY, AdamW } from './adamw.js';
export type {
  AdamWGroupInfo,
  AdamWHyperparameters,
  AdamWOptions,
  AdamWParamGroup,
  AdamWStepResult,
  NonFinitePolicy,
} from './adamw.js';
export { clipByGlobalNorm } from './clip.js';
export type { ClipByGlobalNormOptions, ClipByGlobalNormResult } from './clip.js';
export { NonFiniteGradientError } from './grads.js';
export type { GradientMap } from './grads.js';
