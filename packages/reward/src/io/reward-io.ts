/**
 * Saving and loading a whole PAVRM in the reference's three-part layout (HY-Video-PRFL keeps
 * `lrm_transformer_path`, `lrm_mlp_path` and `lrm_query_attention_path` apart):
 *
 *     pavrm.json                    architecture (aggregation, heads, MLP widths, K) and file list
 *     query_attention.safetensors   QueryAttention state dict, the reference's keys, PyTorch layouts
 *     mlp.safetensors               MLP state dict (fc1, fc2, fc3), PyTorch layouts
 *     transformer.safetensors       the backbone's variables under the backbone's own names (Wan keys for
 *                                   @prfl/models), by default in PyTorch layouts (Linear [out, in],
 *                                   Conv3d [out, in, t, h, w]), as Wan checkpoints store them
 *
 * The two head files load in PyTorch with `module.load_state_dict(safetensors.torch.load_file(path))`.
 * Reading accepts PyTorch's own files too (torch.save zip archives, as the reference writes its
 * `mlp_step_N.ckpt` and `query_attention_step_N.ckpt`), told apart by their first bytes, read without
 * running any code from them (@prfl/tensor's openTorchCheckpoint).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  CorruptFileError,
  type FeatureBackbone,
  formatShape,
  InvalidArgumentError,
  loadWeights,
  type SafetensorsInput,
  saveSafetensors,
  serializeSafetensors,
} from '@prfl/tensor';
import { AGGREGATIONS, type Aggregation, headParamSpecs } from '../model/head-params.js';
import { Pavrm, type PavrmConfig } from '../model/pavrm.js';
import { ensureDir, nodePath, readText, writeTextAtomic } from '../util/node-fs.js';
import { headFromStateDicts, headToStateDicts } from './head-io.js';

export const PAVRM_CONFIG_FILE = 'pavrm.json';
export const QUERY_ATTENTION_FILE = 'query_attention.safetensors';
export const MLP_FILE = 'mlp.safetensors';
export const TRANSFORMER_FILE = 'transformer.safetensors';
export const PAVRM_FORMAT = 'prfl-pavrm';

/**
 * How backbone weights are stored: 'torch' (default) converts by rank, which is Wan's convention (rank-2
 * weights are Linear [in, out] <-> [out, in]; rank-5 are Conv3d [t, h, w, in, out] <-> [out, in, t, h, w];
 * other ranks as they are); 'tfjs' stores values as held; or give both directions yourself.
 */
export type WeightLayout =
  | 'torch'
  | 'tfjs'
  | {
      toFile(name: string, value: tf.Tensor): tf.Tensor;
      fromFile(name: string, stored: tf.Tensor): tf.Tensor;
    };

/** Which backbone variables go into transformer.safetensors. */
export type BackboneExport = 'all' | 'trainable' | 'none';

export interface SaveRewardOptions {
  /** Default 'all' (embeddings too, so the folder rebuilds the model); 'trainable' for the fine-tuned blocks only. */
  backbone?: BackboneExport;
  backboneLayout?: WeightLayout;
}

export interface LoadRewardOptions {
  /** Must match how the folder was saved (pavrm.json records 'torch' or 'tfjs'). */
  backboneLayout?: WeightLayout;
  /** Assign transformer.safetensors into the backbone (default true when the file exists). */
  loadBackbone?: boolean;
  /** Prefix of the new head's tfjs variable names. */
  name?: string;
}

/** pavrm.json. */
export interface PavrmManifest {
  format: typeof PAVRM_FORMAT;
  version: 1;
  config: PavrmConfig;
  files: { queryAttention?: string; mlp: string; transformer?: string };
  backbone: { variables: BackboneExport; layout: 'torch' | 'tfjs' | 'custom'; names: string[] };
}

/** tfjs layout -> PyTorch layout by rank (Wan's convention). The caller disposes the result. */
export function torchLayoutToFile(value: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (value.rank === 2) return tf.transpose(value);
    if (value.rank === 5) return tf.transpose(value, [4, 3, 0, 1, 2]);
    return tf.clone(value);
  });
}

/** PyTorch layout -> tfjs layout by rank (Wan's convention). The caller disposes the result. */
export function torchLayoutFromFile(stored: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const v = tf.cast(stored, 'float32');
    if (v.rank === 2) return tf.transpose(v);
    if (v.rank === 5) return tf.transpose(v, [2, 3, 4, 1, 0]);
    return tf.clone(v);
  });
}

function layoutFunctions(layout: WeightLayout): {
  toFile(name: string, v: tf.Tensor): tf.Tensor;
  fromFile(name: string, v: tf.Tensor): tf.Tensor;
  kind: 'torch' | 'tfjs' | 'custom';
} {
  if (layout === 'torch')
    return {
      toFile: (_, v) => torchLayoutToFile(v),
      fromFile: (_, v) => torchLayoutFromFile(v),
      kind: 'torch',
    };
  if (layout === 'tfjs')
    return { toFile: (_, v) => tf.clone(v), fromFile: (_, v) => tf.cast(v, 'float32'), kind: 'tfjs' };
  if (typeof layout?.toFile === 'function' && typeof layout.fromFile === 'function') {
    return { toFile: layout.toFile, fromFile: layout.fromFile, kind: 'custom' };
  }
  throw new InvalidArgumentError(
    `backboneLayout: expected 'torch', 'tfjs' or { toFile, fromFile }, got ${JSON.stringify(layout)}`,
  );
}

/**
 * The folder's files as bytes (works in the browser): file name -> safetensors or JSON bytes. Tensors
 * are read from the device; nothing is disposed that the caller owns.
 */
export async function serializeReward(
  reward: Pavrm,
  options: SaveRewardOptions = {},
): Promise<Map<string, Uint8Array>> {
  const { manifest, tensors } = prepare(reward, options);
  try {
    const out = new Map<string, Uint8Array>();
    for (const [file, map] of tensors)
      out.set(file, await serializeSafetensors(map, { metadata: { format: PAVRM_FORMAT } }));
    out.set(PAVRM_CONFIG_FILE, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
    return out;
  } finally {
    for (const map of tensors.values()) tf.dispose([...map.values()]);
  }
}

/**
 * Writes the folder (Node): each safetensors file atomically, pavrm.json last (temp + rename), so a
 * reader never sees a manifest naming files that are not complete.
 */
export async function saveReward(
  reward: Pavrm,
  dir: string,
  options: SaveRewardOptions = {},
): Promise<PavrmManifest> {
  const path = await nodePath();
  await ensureDir(dir);
  const { manifest, tensors } = prepare(reward, options);
  try {
    for (const [file, map] of tensors)
      await saveSafetensors(path.join(dir, file), map, { metadata: { format: PAVRM_FORMAT } });
  } finally {
    for (const map of tensors.values()) tf.dispose([...map.values()]);
  }
  await writeTextAtomic(path.join(dir, PAVRM_CONFIG_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

function prepare(
  reward: Pavrm,
  options: SaveRewardOptions,
): { manifest: PavrmManifest; tensors: Map<string, Map<string, tf.Tensor>> } {
  if (!(reward instanceof Pavrm)) throw new InvalidArgumentError('saveReward: expected a Pavrm');
  const which = options.backbone ?? 'all';
  if (!['all', 'trainable', 'none'].includes(which)) {
    throw new InvalidArgumentError(
      `backbone: expected 'all', 'trainable' or 'none', got ${JSON.stringify(which)}`,
    );
  }
  const layout = layoutFunctions(options.backboneLayout ?? 'torch');
  const tensors = new Map<string, Map<string, tf.Tensor>>();
  const head = headToStateDicts(reward.headParamSpecs(), reward.headVariables());
  if (head.queryAttention) tensors.set(QUERY_ATTENTION_FILE, head.queryAttention);
  tensors.set(MLP_FILE, head.mlp);
  const names: string[] = [];
  if (which !== 'none') {
    const backbone = new Map<string, tf.Tensor>();
    for (const [name, v] of reward.backbone.namedVariables()) {
      if (which === 'trainable' && !v.trainable) continue;
      backbone.set(name, layout.toFile(name, v));
      names.push(name);
    }
    if (backbone.size > 0) tensors.set(TRANSFORMER_FILE, backbone);
  }
  const manifest: PavrmManifest = {
    format: PAVRM_FORMAT,
    version: 1,
    config: { ...reward.config, hidden: [...reward.config.hidden] },
    files: {
      ...(head.queryAttention ? { queryAttention: QUERY_ATTENTION_FILE } : {}),
      mlp: MLP_FILE,
      ...(tensors.has(TRANSFORMER_FILE) ? { transformer: TRANSFORMER_FILE } : {}),
    },
    backbone: { variables: which, layout: layout.kind, names },
  };
  return { manifest, tensors };
}

/** Reads a file of the folder: a path in Node, or anything `opener` returns (browser: bytes, a Response). */
export type RewardFileOpener = (file: string) => SafetensorsInput | Promise<SafetensorsInput>;

function parseManifest(text: string, where: string): PavrmManifest {
  let m: PavrmManifest;
  try {
    m = JSON.parse(text) as PavrmManifest;
  } catch (e) {
    throw new CorruptFileError(`${where}: not JSON (${(e as Error).message})`);
  }
  const c = m?.config;
  if (
    m?.format !== PAVRM_FORMAT ||
    m.version !== 1 ||
    typeof c !== 'object' ||
    typeof m.files?.mlp !== 'string'
  ) {
    throw new CorruptFileError(
      `${where}: expected a '${PAVRM_FORMAT}' manifest version 1, got format ${JSON.stringify(m?.format)} version ${String(m?.version)}`,
    );
  }
  if (
    !AGGREGATIONS.includes(c.aggregation as Aggregation) ||
    !Array.isArray(c.hidden) ||
    !Number.isInteger(c.blocks)
  ) {
    throw new CorruptFileError(`${where}: malformed config ${JSON.stringify(c)}`);
  }
  return m;
}

/**
 * Rebuilds a PAVRM from a saved folder on `backbone` (Node: `dir` is a folder path). The head is created
 * from the files; the backbone's variables named in transformer.safetensors are assigned in place (the
 * backbone must have every one of them, with matching shapes). Checked before anything is assigned.
 */
export async function loadReward(
  dir: string,
  backbone: FeatureBackbone,
  options: LoadRewardOptions = {},
): Promise<Pavrm> {
  const path = await nodePath();
  const manifest = parseManifest(
    await readText(path.join(dir, PAVRM_CONFIG_FILE)),
    path.join(dir, PAVRM_CONFIG_FILE),
  );
  return loadRewardWith(manifest, (file) => path.join(dir, file), backbone, options);
}

/** As `loadReward`, for files that are not in a local folder: pass the manifest text and an opener. */
export async function loadRewardFrom(
  manifestText: string | Uint8Array,
  opener: RewardFileOpener,
  backbone: FeatureBackbone,
  options: LoadRewardOptions = {},
): Promise<Pavrm> {
  const text = typeof manifestText === 'string' ? manifestText : new TextDecoder().decode(manifestText);
  return loadRewardWith(parseManifest(text, PAVRM_CONFIG_FILE), opener, backbone, options);
}

async function loadRewardWith(
  manifest: PavrmManifest,
  opener: RewardFileOpener,
  backbone: FeatureBackbone,
  options: LoadRewardOptions,
): Promise<Pavrm> {
  const c = manifest.config;
  if (backbone.featureDim !== c.featureDim) {
    throw new InvalidArgumentError(
      `loadReward: the saved head reads featureDim ${c.featureDim}, the backbone gives ${backbone.featureDim}`,
    );
  }
  const loaded: tf.Tensor[] = [];
  try {
    const qa = manifest.files.queryAttention
      ? await loadWeights(await opener(manifest.files.queryAttention))
      : undefined;
    loaded.push(...Object.values(qa ?? {}));
    const mlp = await loadWeights(await opener(manifest.files.mlp));
    loaded.push(...Object.values(mlp));
    const useBackbone = (options.loadBackbone ?? true) && manifest.files.transformer !== undefined;
    let pending: Array<[tf.Variable, tf.Tensor]> = [];
    if (useBackbone) {
      const stored = await loadWeights(await opener(manifest.files.transformer as string));
      loaded.push(...Object.values(stored));
      pending = backboneAssignments(
        backbone,
        stored,
        options.backboneLayout ?? manifest.backbone.layout,
        manifest.backbone.variables === 'all',
      );
    }
    // Build the head first: if its files do not match, the backbone is left untouched.
    const specs = headParamSpecs({
      featureDim: c.featureDim,
      aggregation: c.aggregation,
      numHeads: c.numHeads,
      hidden: c.hidden,
    });
    const weights = headFromStateDicts(specs, { ...(qa ? { queryAttention: qa } : {}), mlp });
    let reward: Pavrm;
    try {
      reward = new Pavrm(backbone, {
        blocks: c.blocks,
        aggregation: c.aggregation,
        numHeads: c.numHeads,
        hidden: c.hidden,
        headWeights: weights,
        ...(options.name ? { name: options.name } : {}),
      });
    } finally {
      tf.dispose([...weights.values()]);
    }
    for (const [v, value] of pending) v.assign(value);
    tf.dispose(pending.map(([, value]) => value));
    return reward;
  } finally {
    tf.dispose(loaded);
  }
}

/** Checks and converts stored backbone weights; returns (variable, tfjs value) pairs to assign. */
function backboneAssignments(
  backbone: FeatureBackbone,
  stored: Record<string, tf.Tensor>,
  layoutSpec: WeightLayout | 'custom',
  requireAll: boolean,
): Array<[tf.Variable, tf.Tensor]> {
  if (layoutSpec === 'custom') {
    throw new InvalidArgumentError(
      'loadReward: the backbone was saved with a custom layout; pass backboneLayout { toFile, fromFile }',
    );
  }
  const layout = layoutFunctions(layoutSpec);
  const vars = backbone.namedVariables();
  const unexpected = Object.keys(stored).filter((k) => !vars.has(k));
  const missing = requireAll ? [...vars.keys()].filter((k) => !(k in stored)) : [];
  if (unexpected.length > 0 || missing.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`not in the backbone ${unexpected.join(', ')}`);
    throw new InvalidArgumentError(
      `loadReward: ${TRANSFORMER_FILE} does not match the backbone: ${parts.join('; ')}`,
    );
  }
  const out: Array<[tf.Variable, tf.Tensor]> = [];
  try {
    for (const [name, t] of Object.entries(stored)) {
      const v = vars.get(name) as tf.Variable;
      const value = layout.fromFile(name, t);
      out.push([v, value]);
      if (value.shape.length !== v.shape.length || value.shape.some((d, i) => d !== v.shape[i])) {
        throw new InvalidArgumentError(
          `loadReward: ${name} is ${formatShape(t.shape)} in the file (${formatShape(value.shape)} after the layout conversion), the backbone's is ${formatShape(v.shape)}`,
        );
      }
    }
  } catch (e) {
    tf.dispose(out.map(([, value]) => value));
    throw e;
  }
  return out;
}

/**
 * Assigns the reference's head files into an existing PAVRM whose configuration matches: the QueryAttention
 * and MLP state dicts as the reference saves them (`torch.save(module.state_dict(), "mlp_step_N.ckpt")`,
 * a PyTorch zip archive) or as safetensors (`safetensors.torch.save_file(module.state_dict(), path)`);
 * the format is detected from the first bytes, whatever the file is called. A PyTorch file is read without
 * running code: one whose pickle names anything but tensors and plain containers is refused
 * (UnsafePickleError). State dicts wrapped as `{"state_dict": ...}` or with DDP's `module.` prefix are
 * unwrapped. Keys and shapes are checked before anything is assigned.
 */
export async function loadRewardHead(
  reward: Pavrm,
  sources: { queryAttention?: SafetensorsInput; mlp: SafetensorsInput },
): Promise<void> {
  const qa = sources.queryAttention !== undefined ? await loadWeights(sources.queryAttention) : undefined;
  let mlp: Record<string, tf.Tensor>;
  try {
    mlp = await loadWeights(sources.mlp);
  } catch (e) {
    tf.dispose(Object.values(qa ?? {}));
    throw e;
  }
  try {
    const weights = headFromStateDicts(reward.headParamSpecs(), {
      ...(qa ? { queryAttention: qa } : {}),
      mlp,
    });
    for (const [name, value] of weights) (reward.headVariables().get(name) as tf.Variable).assign(value);
    tf.dispose([...weights.values()]);
  } finally {
    tf.dispose([...Object.values(qa ?? {}), ...Object.values(mlp)]);
  }
}
