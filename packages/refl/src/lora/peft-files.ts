/**
 * LoRA adapters on disk (Node), in the files PEFT, diffusers and the reference read:
 *
 *   'reference' (default)  pytorch_lora_transformers_weights.safetensors, keys base_model.model.<module>...
 *                          (what the reference's save_lora_checkpoint writes into checkpoint-<step>/ and its
 *                          resume_lora_path reads back)
 *   'peft'                 adapter_model.safetensors, same keys (PeftModel.from_pretrained)
 *   'diffusers'            pytorch_lora_weights.safetensors, keys transformer.<module>... (load_lora_weights)
 *
 * each with an adapter_config.json (r, lora_alpha, target_modules, ...). Both files are written atomically
 * (temp file, fsync, rename), the weights first.
 */
import {
  CorruptFileError,
  InvalidArgumentError,
  loadSafetensors,
  saveSafetensors,
  type Trainable,
} from '@prfl/tensor';
import { nodeFs, nodePath, readText, writeTextAtomic } from '../util/node-fs.js';
import type { LinearAdapterHost } from './adapter-host.js';
import { LoraAdapters } from './lora-adapters.js';
import { PEFT_CONFIG_FILE, type PeftLoraConfig, parsePeftLoraConfig, peftLoraConfig } from './peft-config.js';
import {
  assignPeftState,
  DIFFUSERS_KEY_PREFIX,
  loraStateDict,
  PEFT_KEY_PREFIX,
  type ParsedPeftState,
  parsedRank,
  parsePeftState,
} from './peft-state.js';

export const REFERENCE_LORA_FILE = 'pytorch_lora_transformers_weights.safetensors';
export const PEFT_ADAPTER_FILE = 'adapter_model.safetensors';
export const DIFFUSERS_LORA_FILE = 'pytorch_lora_weights.safetensors';
/** The reference's copy with `diffusion_model.` keys (read, not written). */
export const REFERENCE_DIFFUSERS_LORA_FILE = 'pytorch_lora_diffusers_weights.safetensors';

export type LoraFileLayout = 'reference' | 'peft' | 'diffusers';

const LAYOUTS: Record<LoraFileLayout, { file: string; prefix: string }> = {
  reference: { file: REFERENCE_LORA_FILE, prefix: PEFT_KEY_PREFIX },
  peft: { file: PEFT_ADAPTER_FILE, prefix: PEFT_KEY_PREFIX },
  diffusers: { file: DIFFUSERS_LORA_FILE, prefix: DIFFUSERS_KEY_PREFIX },
};

/** Weight files looked for in a folder, in this order. */
const SEARCH_ORDER = [
  PEFT_ADAPTER_FILE,
  REFERENCE_LORA_FILE,
  DIFFUSERS_LORA_FILE,
  REFERENCE_DIFFUSERS_LORA_FILE,
];

export interface SaveLoraOptions {
  /** Which file name and key prefix (see above). Default 'reference'. */
  layout?: LoraFileLayout;
  /** Stored float type. Default 'F32' (exact); the reference trains and saves in bf16 ('BF16'). */
  dtype?: 'F32' | 'BF16' | 'F16';
  /** adapter_config.json's base_model_name_or_path. Default null. */
  baseModel?: string | null;
}

/** Writes the adapters into `dir` (created if missing); returns the two files' paths. */
export async function saveLora(
  lora: LoraAdapters,
  dir: string,
  options: SaveLoraOptions = {},
): Promise<{ weights: string; config: string }> {
  const layout = options.layout ?? 'reference';
  const spec = LAYOUTS[layout];
  if (spec === undefined) {
    throw new InvalidArgumentError(
      `layout: expected 'reference', 'peft' or 'diffusers', got ${JSON.stringify(options.layout)}`,
    );
  }
  const dtype = options.dtype ?? 'F32';
  if (!['F32', 'BF16', 'F16'].includes(dtype)) {
    throw new InvalidArgumentError(`dtype: expected 'F32', 'BF16' or 'F16', got ${JSON.stringify(dtype)}`);
  }
  const fs = await nodeFs();
  const path = await nodePath();
  await fs.mkdir(dir, { recursive: true });
  const weights = path.join(dir, spec.file);
  const config = path.join(dir, PEFT_CONFIG_FILE);
  const state = loraStateDict(lora, spec.prefix);
  try {
    // PEFT's save_pretrained writes the same metadata.
    await saveSafetensors(weights, state, { metadata: { format: 'pt' }, dtype });
  } finally {
    for (const t of state.values()) t.dispose();
  }
  await writeTextAtomic(
    config,
    `${JSON.stringify(peftLoraConfig(lora, options.baseModel ?? null), null, 2)}\n`,
  );
  return { weights, config };
}

/** A LoRA file as read: its adapters (PyTorch layout) and its adapter_config.json, when there is one. */
export interface LoraFile {
  /** The weights file read. */
  file: string;
  parsed: ParsedPeftState;
  /** The adapter_config.json next to it, or null (the reference's own checkpoints have none). */
  config: PeftLoraConfig | null;
  /** Frees the tensors read. */
  dispose(): void;
}

/**
 * Reads a LoRA weights file, or the first of adapter_model.safetensors,
 * pytorch_lora_transformers_weights.safetensors, pytorch_lora_weights.safetensors and
 * pytorch_lora_diffusers_weights.safetensors in a folder, with the adapter_config.json beside it.
 * @throws InvalidArgumentError when the path does not exist or a folder holds none of those files;
 *   CorruptFileError for keys or a config that are not plain LoRA (see parsePeftState, parsePeftLoraConfig).
 */
export async function readLoraFile(source: string): Promise<LoraFile> {
  const fs = await nodeFs();
  const path = await nodePath();
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(source);
  } catch (e) {
    throw new InvalidArgumentError(`${source}: cannot be read (${(e as Error).message})`);
  }
  let file = source;
  if (stat.isDirectory()) {
    const present = new Set(await fs.readdir(source));
    const name = SEARCH_ORDER.find((n) => present.has(n));
    if (name === undefined) {
      throw new InvalidArgumentError(
        `${source}: expected a LoRA weights file in the folder (one of ${SEARCH_ORDER.join(', ')}), found none`,
      );
    }
    file = path.join(source, name);
  }
  const configPath = path.join(path.dirname(file), PEFT_CONFIG_FILE);
  const hasConfig = await fs.access(configPath).then(
    () => true,
    () => false,
  );
  const config = hasConfig ? parsePeftLoraConfig(await readText(configPath), configPath) : null;
  const tensors = await loadSafetensors(file);
  const dispose = () => {
    for (const t of Object.values(tensors)) t.dispose();
  };
  try {
    const parsed = parsePeftState(tensors, file);
    if (config !== null && parsedRank(parsed, file) !== config.r) {
      throw new CorruptFileError(
        `${file}: the adapters have rank ${parsedRank(parsed, file)} but ${configPath} says r = ${config.r}`,
      );
    }
    return { file, parsed, config, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

export interface LoadLoraOptions {
  /** lora_alpha when the file has no adapter_config.json (the reference's lora_alpha = lora_rank). */
  alpha?: number;
  /** PEFT's use_rslora, when the file has no adapter_config.json. Default false. */
  useRslora?: boolean;
}

/**
 * New adapters on `model` holding a PEFT-named LoRA file (or folder, see readLoraFile): the adapted layers
 * are the file's modules, rank from the tensors, alpha and rsLoRA from adapter_config.json (or `options`).
 * The adapters are attached; `merge()` folds them into the model.
 * @throws InvalidArgumentError when the file names layers the model lacks, or there is no config and no
 *   `options.alpha`.
 */
export async function loadLora(
  model: LinearAdapterHost & Trainable,
  source: string,
  options: LoadLoraOptions = {},
): Promise<LoraAdapters> {
  const read = await readLoraFile(source);
  try {
    const rank = parsedRank(read.parsed, read.file);
    const alpha = read.config?.loraAlpha ?? options.alpha;
    if (alpha === undefined) {
      throw new InvalidArgumentError(
        `alpha: ${read.file} has no ${PEFT_CONFIG_FILE} beside it; pass options.alpha (the reference uses lora_alpha = lora_rank = ${rank})`,
      );
    }
    const modules = [...read.parsed.adapters.keys()];
    const layers = new Set(
      [...model.namedVariables()].filter(([n, v]) => n.endsWith('.weight') && v.rank === 2).map(([n]) => n),
    );
    const absent = modules.filter((m) => !layers.has(`${m}.weight`));
    if (absent.length > 0) {
      throw new InvalidArgumentError(
        `${read.file}: adapts layers the model does not have: ${absent.slice(0, 6).join(', ')}${absent.length > 6 ? ', ...' : ''}`,
      );
    }
    const lora = new LoraAdapters(model, {
      rank,
      alpha,
      // Exact module names (PEFT matches a list entry equal to the name), so exactly the file's layers.
      targetModules: modules,
      useRslora: read.config?.useRslora ?? options.useRslora ?? false,
    });
    try {
      assignPeftState(lora, read.parsed, read.file);
    } catch (e) {
      lora.dispose();
      throw e;
    }
    return lora;
  } finally {
    read.dispose();
  }
}

/**
 * Loads a PEFT-named LoRA file into existing adapters (the reference's resume_lora_path), e.g. a
 * trainer's `run.lora` before `fit`. Unlike the reference's load_state_dict(strict=False), a module the
 * file lacks or adds is an error, and so is an adapter_config.json whose r or lora_alpha differ.
 */
export async function loadLoraWeights(lora: LoraAdapters, source: string): Promise<void> {
  const read = await readLoraFile(source);
  try {
    const c = read.config;
    if (
      c !== null &&
      (c.r !== lora.rank || c.loraAlpha !== lora.alpha || c.useRslora !== lora.options.useRslora)
    ) {
      throw new InvalidArgumentError(
        `${source}: adapter_config.json has r ${c.r}, lora_alpha ${c.loraAlpha}, use_rslora ${c.useRslora}; the adapters have rank ${lora.rank}, alpha ${lora.alpha}, useRslora ${lora.options.useRslora}`,
      );
    }
    assignPeftState(lora, read.parsed, read.file);
  } finally {
    read.dispose();
  }
}
