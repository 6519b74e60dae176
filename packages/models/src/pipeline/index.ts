export { batchConditioning, classifierFreeGuidance, guidedVelocity } from './guidance.js';
export { firstFrameMask, imageToVideoCondition, latentFrameMask } from './image-condition.js';
export { sampleLatents } from './sample.js';
export type { SampleLatentsOptions, SampleLatentsResult, SamplingProgress } from './sample.js';
export { WanPipeline } from './pipeline.js';
export type { GenerateOptions, GenerationResult, WanPipelineOptions } from './pipeline.js';
