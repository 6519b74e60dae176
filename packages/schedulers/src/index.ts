export type { BetaSchedule, PredictionType, TimestepSpacing } from './beta-schedules.js';
export type { SchedulerSchedule, StateHeader } from './common.js';
export { shiftSigma } from './common.js';
export type { DDIMConfig, DDIMSchedule, DDIMState, DDIMStepArgs } from './ddim.js';
export { DDIMScheduler } from './ddim.js';
export type { DDPMConfig, DDPMSchedule, DDPMState, DDPMStepArgs, DDPMVarianceType } from './ddpm.js';
export { DDPMScheduler } from './ddpm.js';
export type {
  FlowMatchDiscreteConfig,
  FlowMatchEulerConfig,
  FlowMatchEulerDiscreteConfig,
  FlowMatchEulerOptions,
  FlowMatchEulerSchedule,
  FlowMatchEulerState,
  FlowMatchGrid,
} from './flow-match-euler.js';
export { FlowMatchEulerScheduler } from './flow-match-euler.js';
export type {
  FlowUniPCConfig,
  FlowUniPCSchedule,
  FlowUniPCScheduleOptions,
  FlowUniPCState,
} from './flow-unipc.js';
export { FlowUniPCScheduler } from './flow-unipc.js';
export type { AnyScheduler } from './from-config.js';
export { gatherSolverState } from './gather-state.js';
export { SCHEDULER_CLASS_NAMES, schedulerFromConfig } from './from-config.js';
export type {
  ContinuousOptions,
  FlowMatchTrainingGrid,
  GridNoiseLevel,
  GridOptions,
  LogitNormalOptions,
  NoiseLevel,
} from './training-noise.js';
export {
  flowMatchTrainingGrid,
  sampleGridNoiseLevels,
  sampleLogitNormalNoiseLevels,
  sampleUniformNoiseLevels,
} from './training-noise.js';
