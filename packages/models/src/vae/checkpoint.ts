/**
 * VAE checkpoints: one safetensors file with Wan's state-dict keys and PyTorch layouts (what
 * `WanVAE_.state_dict()` holds), the config (latent statistics included) as JSON in the header's
 * `__metadata__` under `prfl_vae_config`.
 *
 * Wan ships its VAE as a PyTorch state dict, `Wan2.1_VAE.pth` (torch.save); `loadWanVAE(path, { config:
 * 'wan2.1' })` reads it as it is (detected from its first bytes, read without running code), as it reads
 * the same weights converted with `safetensors.torch.save_file`.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CorruptFileError,
  type FloatStorageDtype,
  InvalidArgumentError,
  openWeights,
  type SafetensorsInput,
  saveSafetensors,
  serializeSafetensors,
  type TensorReader,
} from '@prfl/tensor';
import {
  type WanVAEConfig,
  type WanVAEPresetName,
  wanVAEConfig,
  wanVAEConfigFromJson,
  wanVAEConfigToJson,
} from './config.js';
import { checkVAEStateDict, vaeParamFromTorch, WanVAE, type WanVAEOptions } from './model.js';
import { wanVAEParamSpecs } from './params.js';

/** The metadata key holding the config JSON. */
export const VAE_CONFIG_METADATA_KEY = 'prfl_vae_config';

export interface LoadWanVAEOptions extends Omit<WanVAEOptions, 'weights' | 'seed'> {
  /**
   * The config, when the file does not carry one (Wan's own weights: 'wan2.1'); overrides the file's.
   * A preset name, a (partial) config, or a config JSON (snake_case, as in the metadata). A partial one
   * is completed from `base` (default 'wan2.1'), as everywhere, not from the file's config.
   */
  config?: WanVAEPresetName | Partial<WanVAEConfig> | Record<string, unknown>;
}

function resolveConfig(
  given: LoadWanVAEOptions['config'],
  base: LoadWanVAEOptions['base'],
  metadata: Readonly<Record<string, string>> | undefined,
  what: string,
): WanVAEConfig {
  if (given !== undefined) {
    if (typeof given === 'string') return wanVAEConfig(given, base);
    // Snake_case keys (or Wan's class name) mark config JSON; `dim` is spelt the same in both.
    if (Object.keys(given).some((k) => k.includes('_')))
      return wanVAEConfigFromJson(given as Record<string, unknown>, base);
    return wanVAEConfig(given as Partial<WanVAEConfig>, base);
  }
  const text = metadata?.[VAE_CONFIG_METADATA_KEY];
  if (text === undefined) {
    throw new InvalidArgumentError(
      `${what}: no VAE config in the file's metadata (${VAE_CONFIG_METADATA_KEY}); pass options.config (e.g. 'wan2.1' for Wan's own weights)`,
    );
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new CorruptFileError(
      `${what}: the metadata ${VAE_CONFIG_METADATA_KEY} is not JSON (${(e as Error).message})`,
    );
  }
  return wanVAEConfigFromJson(json, base);
}

/**
 * Builds a VAE from any TensorReader (an open safetensors file). Keys and shapes are checked against the
 * config from the header alone before any data is read. The reader stays open.
 */
export async function loadWanVAEFrom(reader: TensorReader, options: LoadWanVAEOptions = {}): Promise<WanVAE> {
  const what = 'name' in reader && typeof reader.name === 'string' ? reader.name : 'VAE checkpoint';
  const config = resolveConfig(options.config, options.base, reader.metadata, what);
  const specs = wanVAEParamSpecs(config);
  checkVAEStateDict(specs, new Map(reader.tensors.map((t) => [t.name, t.shape])), what);
  const weights = new Map<string, tf.Tensor>();
  try {
    for (const spec of specs) {
      const stored = await reader.readTensor(spec.name);
      try {
        weights.set(spec.name, vaeParamFromTorch(spec, stored));
      } finally {
        stored.dispose();
      }
    }
    const { config: _c, base: _b, ...rest } = options;
    return new WanVAE(config, { ...rest, weights });
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/**
 * Loads a VAE from a safetensors file or a PyTorch state dict such as Wan's `Wan2.1_VAE.pth` (Node path,
 * bytes, Blob or Response). A PyTorch file has no metadata: pass `config`.
 */
export async function loadWanVAE(source: SafetensorsInput, options: LoadWanVAEOptions = {}): Promise<WanVAE> {
  const reader = await openWeights(source);
  try {
    return await loadWanVAEFrom(reader, options);
  } finally {
    await reader.close();
  }
}

export interface SaveWanVAEOptions {
  /** Stored float type (default F32). */
  dtype?: FloatStorageDtype;
}

function metadata(vae: WanVAE): Record<string, string> {
  return { format: 'pt', [VAE_CONFIG_METADATA_KEY]: JSON.stringify(wanVAEConfigToJson(vae.config)) };
}

/** Node: writes the VAE (Wan keys and layouts, config in the metadata) to `path`, atomically. Resolves to the file size. */
export async function saveWanVAE(
  vae: WanVAE,
  path: string,
  options: SaveWanVAEOptions = {},
): Promise<number> {
  const state = vae.stateDict();
  try {
    return await saveSafetensors(path, state, { dtype: options.dtype ?? 'F32', metadata: metadata(vae) });
  } finally {
    tf.dispose([...state.values()]);
  }
}

/** The VAE as the bytes of one safetensors file (browser downloads). */
export async function serializeWanVAE(vae: WanVAE, options: SaveWanVAEOptions = {}): Promise<Uint8Array> {
  const state = vae.stateDict();
  try {
    return await serializeSafetensors(state, { dtype: options.dtype ?? 'F32', metadata: metadata(vae) });
  } finally {
    tf.dispose([...state.values()]);
  }
}
