export {
  EMBEDDED_WORLD,
  type EmbeddedWorld,
  isHeldOut,
  sampleWorldClips,
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
