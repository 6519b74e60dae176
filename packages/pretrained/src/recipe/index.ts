/**
 * @prfl/pretrained/recipe: how the embedded models are made (Node only: it writes run folders). The
 * package's main entry, which loads the shipped models, runs in Node and in browsers.
 */
export {
  type GeneratorProgress,
  type TrainedGenerator,
  type TrainGeneratorOptions,
  trainGenerator,
  worldTokenizer,
} from './train-generator.js';
export {
  preferencePairs,
  type RewardProgress,
  type TrainedReward,
  type TrainRewardOptions,
  trainReward,
} from './train-reward.js';
export { saveEmbedded } from './save-embedded.js';
export { eta, formatDuration, progressLine } from './progress.js';
