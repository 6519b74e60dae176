/**
 * Wan DiT checkpoints in Wan's official layout, so a PyTorch user loads ours and we load theirs:
 *   config.json                                    WanModel config (wanDiTConfigToJson)
 *   diffusion_pytorch_model.safetensors            weights, Wan's keys, PyTorch layouts
 *   or diffusion_pytorch_model-0000i-of-0000n.safetensors + diffusion_pytorch_model.safetensors.index.json
 * float32, bfloat16 or float16 on disk (bf16/f16 are upcast to float32 on load; tfjs has no half types).
 * Loading also takes a PyTorch state dict (torch.save: diffusers' `diffusion_pytorch_model.bin`, or any
 * .pt/.pth/.bin given by path or bytes), detected from its first bytes and read without running code.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type FloatStorageDtype,
  InvalidArgumentError,
  nodeImport,
  openShardedSafetensors,
  openWeights,
  type SavedCheckpoint,
  saveShardedSafetensors,
  serializeSafetensors,
  type TensorReader,
} from '@prfl/tensor';
import {
  type WanDiTConfig,
  type WanDiTPresetName,
  wanDiTConfig,
  wanDiTConfigFromJson,
  wanDiTConfigToJson,
} from './config.js';
import { WanDiT, type WanDiTOptions } from './model.js';
import { wanDiTParamSpecs } from './params.js';
import { checkStateDictShapes, fromTorchLayout } from './state-dict.js';

export const WAN_CONFIG_FILE = 'config.json';
export const WAN_WEIGHTS_PREFIX = 'diffusion_pytorch_model';
export const WAN_WEIGHTS_FILE = `${WAN_WEIGHTS_PREFIX}.safetensors`;
export const WAN_INDEX_FILE = `${WAN_WEIGHTS_PREFIX}.safetensors.index.json`;
/** What diffusers writes without safetensors: a torch.save state dict (a PyTorch zip archive). */
const WAN_TORCH_WEIGHTS_FILE = `${WAN_WEIGHTS_PREFIX}.bin`;

/**
 * Loader options: those of the model, `base` included (what a partial config's, or a config.json's,
 * missing fields come from; default 'wan2.1', Wan's own defaults).
 */
export type LoadWanDiTOptions = Omit<WanDiTOptions, 'weights' | 'seed'>;

/**
 * Whether a config object is ours (camelCase, possibly partial) rather than a parsed config.json
 * (snake_case). Only `dim` and `eps` are spelt the same in both, and they mean the same.
 */
function isCamelConfig(
  config: Partial<WanDiTConfig> | Record<string, unknown>,
): config is Partial<WanDiTConfig> {
  return Object.keys(config).some((k) => /[A-Z]/.test(k));
}

/**
 * Builds a model from a config (a parsed config.json, a preset name or a possibly partial WanDiTConfig,
 * completed from `options.base`) and any TensorReader
 * (`openSafetensors` of a path, bytes, Blob or Response; `openShardedSafetensorsFrom` for shards in a
 * browser). Every key and PyTorch shape is checked against the config from the headers alone, before
 * any tensor data is read; then tensors are read one at a time and converted to tfjs layouts. The reader
 * stays open (the caller closes it).
 *
 * @throws InvalidArgumentError listing every missing and unexpected key, or naming a key whose shape
 *   differs (with both shapes); CorruptFileError from the reader for damaged files.
 */
export async function loadWanDiTFrom(
  config: WanDiTPresetName | Partial<WanDiTConfig> | Record<string, unknown>,
  reader: TensorReader,
  options: LoadWanDiTOptions = {},
): Promise<WanDiT> {
  const c =
    typeof config === 'string'
      ? wanDiTConfig(config, options.base)
      : isCamelConfig(config)
        ? wanDiTConfig(config, options.base)
        : wanDiTConfigFromJson(config, options.base);
  const specs = wanDiTParamSpecs(c);
  const what = 'name' in reader && typeof reader.name === 'string' ? reader.name : 'Wan DiT checkpoint';
  checkStateDictShapes(specs, new Map(reader.tensors.map((t) => [t.name, t.shape])), what);
  const weights = new Map<string, tf.Tensor>();
  try {
    for (const spec of specs) {
      const stored = await reader.readTensor(spec.name);
      try {
        weights.set(spec.name, fromTorchLayout(spec, stored));
      } finally {
        stored.dispose();
      }
    }
    const { base: _base, ...rest } = options;
    return new WanDiT(c, { ...rest, weights });
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/**
 * Node: loads a Wan DiT from a folder holding config.json and the weights (a sharded index is preferred
 * over a single file, as diffusers does; a PyTorch `diffusion_pytorch_model.bin` is used when there is
 * no safetensors file). `path` may also name the weights file (safetensors or a PyTorch .pt/.pth/.bin) or
 * the index directly, with config.json next to it.
 */
export async function loadWanDiT(path: string, options: LoadWanDiTOptions = {}): Promise<WanDiT> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  let stat: import('node:fs').Stats;
  try {
    stat = await fs.stat(path);
  } catch (e) {
    throw new InvalidArgumentError(`loadWanDiT: cannot open ${path} (${(e as Error).message})`);
  }
  const dir = stat.isDirectory() ? path : nodePath.dirname(path);
  let weightsPath = path;
  if (stat.isDirectory()) {
    const entries = await fs.readdir(dir);
    if (entries.includes(WAN_INDEX_FILE)) weightsPath = nodePath.join(dir, WAN_INDEX_FILE);
    else if (entries.includes(WAN_WEIGHTS_FILE)) weightsPath = nodePath.join(dir, WAN_WEIGHTS_FILE);
    else if (entries.includes(WAN_TORCH_WEIGHTS_FILE))
      weightsPath = nodePath.join(dir, WAN_TORCH_WEIGHTS_FILE);
  }
  const configPath = nodePath.join(dir, WAN_CONFIG_FILE);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await fs.readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new InvalidArgumentError(`loadWanDiT: cannot read ${configPath} (${(e as Error).message})`);
  }
  // A single weights file may be either format; an index (or a folder without weights, for its error)
  // goes to the sharded reader.
  const single = weightsPath !== path || !stat.isDirectory();
  const reader =
    single && !weightsPath.endsWith('.json')
      ? await openWeights(weightsPath)
      : await openShardedSafetensors(weightsPath);
  try {
    return await loadWanDiTFrom(json, reader, options);
  } finally {
    await reader.close();
  }
}

/**
 * Loads a Wan DiT from the bytes of a config.json and one weights file, safetensors or a PyTorch state
 * dict (browser uploads, fetch).
 */
export async function loadWanDiTFromBytes(
  configJson: string | Record<string, unknown>,
  weights: Uint8Array | ArrayBuffer | Blob | Response,
  options: LoadWanDiTOptions = {},
): Promise<WanDiT> {
  const json =
    typeof configJson === 'string' ? (JSON.parse(configJson) as Record<string, unknown>) : configJson;
  const reader = await openWeights(weights);
  try {
    return await loadWanDiTFrom(json, reader, options);
  } finally {
    await reader.close();
  }
}

export interface SaveWanDiTOptions {
  /** Stored float type (default F32; Wan's releases ship F32, BF16 halves the size). */
  dtype?: FloatStorageDtype;
  /** Largest shard in bytes of tensor data (default 5 GB, as diffusers); above it, shards and an index. */
  maxShardBytes?: number;
}

/** What `saveWanDiT` wrote: the config file and the weight files (see SavedCheckpoint). */
export interface SavedWanDiT extends SavedCheckpoint {
  configFile: string;
}

function stateDictMetadata(): Record<string, string> {
  return { format: 'pt' };
}

/**
 * Node: writes `model` in Wan's layout into `dir` (config.json, then the weights; sharded with an index
 * when larger than maxShardBytes). Loadable by Wan's WanModel.from_pretrained and by loadWanDiT.
 */
export async function saveWanDiT(
  model: WanDiT,
  dir: string,
  options: SaveWanDiTOptions = {},
): Promise<SavedWanDiT> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  await fs.mkdir(dir, { recursive: true });
  const state = model.stateDict();
  try {
    const saved = await saveShardedSafetensors(dir, state, {
      prefix: WAN_WEIGHTS_PREFIX,
      dtype: options.dtype ?? 'F32',
      metadata: stateDictMetadata(),
      ...(options.maxShardBytes !== undefined ? { maxShardBytes: options.maxShardBytes } : {}),
    });
    await fs.writeFile(
      nodePath.join(dir, WAN_CONFIG_FILE),
      `${JSON.stringify(wanDiTConfigToJson(model.config), null, 2)}\n`,
    );
    return { ...saved, configFile: WAN_CONFIG_FILE };
  } finally {
    tf.dispose([...state.values()]);
  }
}

/** `model` as the bytes of config.json and one diffusion_pytorch_model.safetensors (browser downloads). */
export async function serializeWanDiT(
  model: WanDiT,
  options: Pick<SaveWanDiTOptions, 'dtype'> = {},
): Promise<{ config: string; weights: Uint8Array }> {
  const state = model.stateDict();
  try {
    const weights = await serializeSafetensors(state, {
      dtype: options.dtype ?? 'F32',
      metadata: stateDictMetadata(),
    });
    return { config: `${JSON.stringify(wanDiTConfigToJson(model.config), null, 2)}\n`, weights };
  } finally {
    tf.dispose([...state.values()]);
  }
}
