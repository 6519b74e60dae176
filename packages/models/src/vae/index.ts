export {
  latentShape,
  spatialCompression,
  temporalCompression,
  validateWanVAEConfig,
  videoShape,
  WAN21_LATENT_MEAN,
  WAN21_LATENT_STD,
  WAN_VAE_PRESETS,
  wanVAEConfig,
  wanVAEConfigFromJson,
  wanVAEConfigToJson,
} from './config.js';
export type { WanVAEConfig, WanVAEPresetName } from './config.js';
export { vaeLayout, wanVAEParamSpecs, wanVAEParameterCount } from './params.js';
export type { ConvDims, VAELayout, VAEModule, VAEParamLayout, VAEParamSpec } from './params.js';
export {
  attentionBlock,
  causalConv3d,
  channelRmsNorm,
  downsample,
  pointwiseConv,
  residualBlock,
  upsample,
  upsampleNearest2x,
} from './layers.js';
export type { VAEWeights } from './layers.js';
export { checkVAEStateDict, vaeParamFromTorch, vaeParamToTorch, WanVAE } from './model.js';
export type { DecodeOptions, EncodeOptions, LatentMoments, WanVAEOptions } from './model.js';
export {
  klDivergence,
  measureLatentStats,
  reconstructionLoss,
  trainVAE,
  vaeLoss,
  vaeTrainStep,
} from './train.js';
export type {
  ReconstructionLoss,
  TrainVAEOptions,
  TrainVAEResult,
  VAELossOptions,
  VAELossTerms,
  VAETrainProgress,
  VAETrainStepOptions,
  VAETrainStepResult,
} from './train.js';
export {
  loadWanVAE,
  loadWanVAEFrom,
  saveWanVAE,
  serializeWanVAE,
  VAE_CONFIG_METADATA_KEY,
} from './checkpoint.js';
export type { LoadWanVAEOptions, SaveWanVAEOptions } from './checkpoint.js';
