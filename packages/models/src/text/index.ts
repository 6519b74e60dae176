export {
  EOS_ID,
  EOS_TOKEN,
  PAD_ID,
  PAD_TOKEN,
  SPECIAL_TOKENS,
  splitWords,
  UNK_ID,
  UNK_TOKEN,
  WordTokenizer,
} from './tokenizer.js';
export type { TokenizedBatch, TokenizedPrompt, WordTokenizerOptions } from './tokenizer.js';
export {
  layerNormAffine,
  TEXT_ENCODER_PRESETS,
  textEncoderParamSpecs,
  textEncoderSizes,
  TransformerTextEncoder,
} from './encoder.js';
export type {
  PromptEmbeddings,
  PromptEncoder,
  TextEncoderConfig,
  TextEncoderPresetName,
  TextEncoderSizes,
  TextParamSpec,
  TransformerTextEncoderOptions,
} from './encoder.js';
export { parseNpy, readNpyFile } from './npy.js';
export type { NpyArray } from './npy.js';
export { loadPrecomputedText, PrecomputedTextEncoder } from './precomputed.js';
export type { EmbeddingSource, PrecomputedEntry, PrecomputedTextEncoderOptions } from './precomputed.js';
export {
  loadTextEncoder,
  saveTextEncoder,
  serializeTextEncoder,
  TEXT_ENCODER_METADATA_KEY,
} from './checkpoint.js';
