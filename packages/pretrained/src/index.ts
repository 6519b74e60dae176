export {
  EMBEDDED_WORLD,
  type EmbeddedWorld,
  isHeldOut,
  sampleWorldClips,
  wideScenes,
  type WorldClipOptions,
  worldPrompts,
} from './world.js';
export { DIT_PREFIX, PromptedGenerator, TEXT_PREFIX, tokenConditioning } from './prompted-generator.js';
export {
  type GenerateJudgedOptions,
  generateJudged,
  type JudgedGenerations,
  type JudgedVideo,
  judged,
} from './generate-judged.js';
export {
  DIT_DIR,
  disposeEmbedded,
  disposePavrm,
  EMBEDDED_FORMAT,
  type EmbeddedManifest,
  type EmbeddedModels,
  embeddedWeightsUrl,
  type LoadEmbeddedOptions,
  loadEmbedded,
  MANIFEST_FILE,
  PAVRM_DIR,
  parseEmbeddedManifest,
  TEXT_ENCODER_FILE,
  VAE_FILE,
  type WeightsReader,
  weightsReader,
} from './embedded.js';
export {
  type EvaluateGeneratorOptions,
  evaluateGenerator,
  type GeneratorEvaluation,
  type Rate,
  wilson,
} from './evaluate-generator.js';
export { type ClipCrop, renderClips, renderCrops, tensorToVideo, videoToTensor } from './clips.js';
export { evaluateVae, type EvaluateVaeOptions, type VaeEvaluation } from './evaluate-vae.js';
export { type FinetuneOptions, type FinetuneResult, finetuneWithPrfl, goodClipData } from './finetune.js';
export {
  type GenerateBatchArgs,
  type GenerateBatchResult,
  type GeneratorModels,
  type GeneratorReplica,
  type GeneratorReplicaSpec,
  generateJudgedBatch,
  generatorReplicaRecipe,
  judgedGeneratorReplica,
} from './parallel/replica.js';
