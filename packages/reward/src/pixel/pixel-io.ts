/**
 * The pixel reward as one safetensors file: PyTorch layouts (Conv3d [out, in, t, h, w], Linear
 * [out, in]) under PyTorch-style names, the configuration in the header's metadata.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CorruptFileError,
  openSafetensors,
  type SafetensorsInput,
  saveSafetensors,
  serializeSafetensors,
} from '@prfl/tensor';
import { torchLayoutFromFile, torchLayoutToFile } from '../io/reward-io.js';
import {
  PixelVideoReward,
  type PixelVideoRewardConfig,
  type PixelVideoRewardOptions,
} from './pixel-video-reward.js';

const FORMAT = 'prfl-pixel-video-reward';

function stateDict(model: PixelVideoReward): Map<string, tf.Tensor> {
  return new Map([...model.namedVariables()].map(([k, v]) => [k, torchLayoutToFile(v)]));
}

function metadata(model: PixelVideoReward): Record<string, string> {
  return { format: FORMAT, config: JSON.stringify(model.config) };
}

/** Writes the model to a safetensors file (Node; atomic). */
export async function savePixelReward(model: PixelVideoReward, path: string): Promise<void> {
  const state = stateDict(model);
  try {
    await saveSafetensors(path, state, { metadata: metadata(model) });
  } finally {
    tf.dispose([...state.values()]);
  }
}

/** The model as safetensors bytes (browser or Node). */
export async function serializePixelReward(model: PixelVideoReward): Promise<Uint8Array> {
  const state = stateDict(model);
  try {
    return await serializeSafetensors(state, { metadata: metadata(model) });
  } finally {
    tf.dispose([...state.values()]);
  }
}

/** Reads a model written by savePixelReward / serializePixelReward (a path in Node, bytes, a Blob, ...). */
export async function loadPixelReward(
  source: SafetensorsInput,
  options: Omit<PixelVideoRewardOptions, 'weights' | 'seed'> = {},
): Promise<PixelVideoReward> {
  const file = await openSafetensors(source);
  let config: PixelVideoRewardConfig;
  const weights = new Map<string, tf.Tensor>();
  try {
    const meta = file.metadata;
    if (meta?.format !== FORMAT || typeof meta.config !== 'string') {
      throw new CorruptFileError(
        `pixel reward: expected metadata format '${FORMAT}' with a config, got ${JSON.stringify(meta)}`,
      );
    }
    config = JSON.parse(meta.config) as PixelVideoRewardConfig;
    for (const name of file.names) {
      const stored = await file.readTensor(name);
      weights.set(name, torchLayoutFromFile(stored));
      stored.dispose();
    }
  } catch (e) {
    tf.dispose([...weights.values()]);
    throw e;
  } finally {
    await file.close();
  }
  try {
    return new PixelVideoReward(config, { ...options, weights });
  } finally {
    tf.dispose([...weights.values()]);
  }
}
