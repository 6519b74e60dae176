/**
 * @prfl/pretrained/recipe: how the embedded models are made (Node only: it writes run folders). The
 * package's main entry, which loads the shipped models, runs in Node and in browsers.
 */
export {
  EMBEDDED_DIT,
  type GeneratorProgress,
  type TrainedGenerator,
  type TrainGeneratorOptions,
  trainGenerator,
  worldTokenizer,
} from './train-generator.js';
export {
  GENERATIONS_FILE,
  type JudgedGenerator,
  type LabelledLatents,
  type LabelledVideo,
  VIDEOS_FILE,
  preferencePairs,
  rewardGenerations,
  type RewardProgress,
  type TrainedReward,
  type TrainRewardOptions,
  trainReward,
} from './train-reward.js';
export { type SaveEmbeddedOptions, saveEmbedded } from './save-embedded.js';
export { eta, formatDuration, progressLine } from './progress.js';
export {
  DECODER_PHASES,
  DEFAULT_VAE_PHASES,
  inflateVae,
  type TrainEmbeddedVaeOptions,
  trainEmbeddedVae,
  type TuneVaeDecoderOptions,
  tuneVaeDecoder,
  VAE_CHECKPOINT_FILE,
  VAE_CHECKPOINT_FORMAT,
  type VaeLearningRateSchedule,
  vaeLearningRate,
  type VaePhase,
  type VaeTrainProgress,
} from './train-vae.js';
export {
  pretrain,
  type PretrainOptions,
  type PretrainProgress,
  type PretrainResult,
} from './pretrain.js';
export {
  decodeFrames,
  evaluatePixelReward,
  type TrainedPixelReward,
  type TrainPixelRewardOptions,
  trainPixelReward,
} from './train-pixel-reward.js';
