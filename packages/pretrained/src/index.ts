export {
  EMBEDDED_WORLD,
  type EmbeddedWorld,
  isHeldOut,
  sampleWorldClips,
  type WorldClipOptions,
  worldPrompts,
} from './world.js';
export { DIT_PREFIX, PromptedGenerator, TEXT_PREFIX, tokenConditioning } from './prompted-generator.js';
