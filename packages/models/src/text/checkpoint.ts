/**
 * Text encoder checkpoints: one safetensors file, parameters under their names (tfjs layout: Linear
 * weights [in, out]), the config and the vocabulary as JSON in the `__metadata__` under
 * `prfl_text_encoder`, so a checkpoint is all that is needed to tokenize and encode.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CorruptFileError,
  InvalidArgumentError,
  openSafetensors,
  type SafetensorsInput,
  saveSafetensors,
  serializeSafetensors,
} from '@prfl/tensor';
import { type TextEncoderConfig, TransformerTextEncoder } from './encoder.js';
import { WordTokenizer } from './tokenizer.js';

export const TEXT_ENCODER_METADATA_KEY = 'prfl_text_encoder';

function metadata(enc: TransformerTextEncoder): Record<string, string> {
  const { vocabSize: _v, textLen: _t, ...sizes } = enc.config;
  return {
    format: 'prfl',
    [TEXT_ENCODER_METADATA_KEY]: JSON.stringify({ config: sizes, tokenizer: enc.tokenizer.toJSON() }),
  };
}

/** Node: writes the encoder (weights, config, vocabulary) to `path`, atomically. Resolves to the file size. */
export async function saveTextEncoder(enc: TransformerTextEncoder, path: string): Promise<number> {
  return saveSafetensors(path, enc.namedVariables(), { metadata: metadata(enc) });
}

/** The encoder as the bytes of one safetensors file. */
export async function serializeTextEncoder(enc: TransformerTextEncoder): Promise<Uint8Array> {
  return serializeSafetensors(enc.namedVariables(), { metadata: metadata(enc) });
}

/** Loads a text encoder written by saveTextEncoder / serializeTextEncoder. */
export async function loadTextEncoder(
  source: SafetensorsInput,
  options: { name?: string; trainable?: boolean } = {},
): Promise<TransformerTextEncoder> {
  const file = await openSafetensors(source);
  try {
    const text = file.metadata?.[TEXT_ENCODER_METADATA_KEY];
    if (text === undefined) {
      throw new InvalidArgumentError(
        `${file.name}: not a prfl text encoder (no ${TEXT_ENCODER_METADATA_KEY} in the metadata)`,
      );
    }
    let meta: { config: Partial<TextEncoderConfig>; tokenizer: { words: string[]; textLen: number } };
    try {
      meta = JSON.parse(text);
    } catch (e) {
      throw new CorruptFileError(
        `${file.name}: ${TEXT_ENCODER_METADATA_KEY} is not JSON (${(e as Error).message})`,
      );
    }
    const tokenizer = new WordTokenizer(meta.tokenizer);
    const weights = new Map<string, tf.Tensor>();
    try {
      for (const n of file.names) weights.set(n, await file.readTensor(n));
      return new TransformerTextEncoder({ tokenizer, config: meta.config, weights, ...options });
    } finally {
      tf.dispose([...weights.values()]);
    }
  } finally {
    await file.close();
  }
}
