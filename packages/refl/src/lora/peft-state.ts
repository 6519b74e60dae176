/**
 * LoRA adapters as PEFT state dicts: PyTorch layout (lora_A.weight [r, in], lora_B.weight [out, r]) under
 * PEFT's key names.
 *
 * PEFT's get_peft_model_state_dict names a Wan transformer's adapters
 * `base_model.model.blocks.0.self_attn.q.lora_A.weight` (the PeftModel's parameter name with the adapter
 * name `.default` removed); that is what PEFT's save_pretrained writes to adapter_model.safetensors and
 * what the reference writes to pytorch_lora_transformers_weights.safetensors and reads back as
 * resume_lora_path (it re-inserts `.default` and calls load_state_dict(strict=False), which silently
 * skips any key it does not know, so the names must be exactly these). diffusers' save_lora_weights
 * writes `transformer.` instead of `base_model.model.`, and the reference's third file
 * `diffusion_model.`. Reading accepts all three, no prefix, and keys that still hold an adapter name
 * (`lora_A.default.weight`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CorruptFileError, formatShape, InvalidArgumentError } from '@prfl/tensor';
import { LORA_A_SUFFIX, LORA_B_SUFFIX, type LoraAdapters } from './lora-adapters.js';

/** PEFT's prefix (get_peft_model_state_dict, save_pretrained; the reference's resume_lora_path). */
export const PEFT_KEY_PREFIX = 'base_model.model.';
/** diffusers' save_lora_weights for a transformer. */
export const DIFFUSERS_KEY_PREFIX = 'transformer.';
/** The reference's pytorch_lora_diffusers_weights.safetensors. */
export const REFERENCE_DIFFUSERS_KEY_PREFIX = 'diffusion_model.';

const KNOWN_PREFIXES = [PEFT_KEY_PREFIX, DIFFUSERS_KEY_PREFIX, REFERENCE_DIFFUSERS_KEY_PREFIX];

/**
 * The adapters as a PEFT state dict: `<prefix><module>.lora_A.weight` [r, in] and `.lora_B.weight`
 * [out, r], float32. New tensors; the caller disposes them.
 */
export function loraStateDict(lora: LoraAdapters, prefix: string = PEFT_KEY_PREFIX): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const module of lora.modules) {
    const m = lora.adapterOf(module) as NonNullable<ReturnType<LoraAdapters['adapterOf']>>;
    out.set(`${prefix}${module}${LORA_A_SUFFIX}`, tf.transpose(m.a));
    out.set(`${prefix}${module}${LORA_B_SUFFIX}`, tf.transpose(m.b));
  }
  return out;
}

/** One adapter read from a state dict, PyTorch layout. */
export interface PeftAdapterTensors {
  /** [r, in] */
  a: tf.Tensor;
  /** [out, r] */
  b: tf.Tensor;
}

/** A parsed PEFT LoRA state dict: adapters by module name, and the key prefix the file used. */
export interface ParsedPeftState {
  adapters: Map<string, PeftAdapterTensors>;
  prefix: string;
}

const KEY = /^(.+)\.lora_([AB])(?:\.([A-Za-z0-9_-]+))?\.weight$/;

/**
 * Groups a state dict's LoRA tensors by module. `what` names the source in errors. The tensors are the
 * state dict's own (not copied).
 * @throws CorruptFileError for keys that are not LoRA weights (e.g. lora_B biases, DoRA magnitudes,
 *   modules_to_save), mixed prefixes or adapter names, a module with only one of A and B, or A and B
 *   whose shapes do not chain.
 */
export function parsePeftState(state: Readonly<Record<string, tf.Tensor>>, what: string): ParsedPeftState {
  const keys = Object.keys(state);
  if (keys.length === 0) throw new CorruptFileError(`${what}: holds no tensors`);
  const prefix = KNOWN_PREFIXES.find((p) => keys.every((k) => k.startsWith(p))) ?? '';
  const adapterNames = new Set<string>();
  const parts = new Map<string, Partial<PeftAdapterTensors>>();
  for (const key of keys) {
    const m = KEY.exec(key.slice(prefix.length));
    if (!m) {
      throw new CorruptFileError(
        `${what}: '${key}' is not a LoRA weight ('<module>.lora_A.weight' or '.lora_B.weight'${prefix ? ` after '${prefix}'` : ''}); only plain LoRA (no bias, DoRA or modules_to_save) is read`,
      );
    }
    const [, module, ab, adapterName] = m as unknown as [string, string, 'A' | 'B', string | undefined];
    adapterNames.add(adapterName ?? '');
    const entry = parts.get(module) ?? {};
    entry[ab === 'A' ? 'a' : 'b'] = state[key] as tf.Tensor;
    parts.set(module, entry);
  }
  if (adapterNames.size > 1) {
    throw new CorruptFileError(
      `${what}: holds several adapters (${[...adapterNames].map((n) => JSON.stringify(n || '(none)')).join(', ')}); expected one`,
    );
  }
  const adapters = new Map<string, PeftAdapterTensors>();
  for (const [module, { a, b }] of parts) {
    if (!a || !b) {
      throw new CorruptFileError(
        `${what}: '${module}' has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`,
      );
    }
    if (a.rank !== 2 || b.rank !== 2 || a.shape[0] !== b.shape[1]) {
      throw new CorruptFileError(
        `${what}: '${module}': expected lora_A [r, in] and lora_B [out, r], got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
      );
    }
    adapters.set(module, { a, b });
  }
  return { adapters, prefix };
}

/**
 * Assigns a parsed state to `lora`: every adapted module must be in it, with lora_A [rank, in] and
 * lora_B [out, rank] matching the layer. Everything is checked before anything is assigned.
 * @throws InvalidArgumentError listing missing and unexpected modules, or naming a shape that differs.
 */
export function assignPeftState(lora: LoraAdapters, parsed: ParsedPeftState, what: string): void {
  const mine = new Set(lora.modules);
  const missing = lora.modules.filter((m) => !parsed.adapters.has(m));
  const unexpected = [...parsed.adapters.keys()].filter((m) => !mine.has(m));
  if (missing.length > 0 || unexpected.length > 0) {
    const list = (xs: string[]) =>
      `${xs.slice(0, 6).join(', ')}${xs.length > 6 ? `, ... (${xs.length})` : ''}`;
    throw new InvalidArgumentError(
      `${what}: its adapters do not match the model's (rank ${lora.rank}, targetModules ${JSON.stringify(lora.options.targetModules)}): ${[
        ...(missing.length > 0 ? [`missing ${list(missing)}`] : []),
        ...(unexpected.length > 0 ? [`unexpected ${list(unexpected)}`] : []),
      ].join('; ')}`,
    );
  }
  for (const module of lora.modules) {
    const { a, b } = parsed.adapters.get(module) as PeftAdapterTensors;
    const own = lora.adapterOf(module) as NonNullable<ReturnType<LoraAdapters['adapterOf']>>;
    const [inF, r] = own.a.shape as [number, number];
    const outF = own.b.shape[1] as number;
    if (a.shape[0] !== r || a.shape[1] !== inF || b.shape[0] !== outF || b.shape[1] !== r) {
      throw new InvalidArgumentError(
        `${what}: '${module}': expected lora_A [${r}, ${inF}] and lora_B [${outF}, ${r}], got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
      );
    }
  }
  for (const module of lora.modules) {
    const { a, b } = parsed.adapters.get(module) as PeftAdapterTensors;
    const own = lora.adapterOf(module) as NonNullable<ReturnType<LoraAdapters['adapterOf']>>;
    tf.tidy(() => {
      own.a.assign(tf.transpose(tf.cast(a, 'float32')));
      own.b.assign(tf.transpose(tf.cast(b, 'float32')));
    });
  }
}

/** The rank of a parsed state (all adapters must share it). */
export function parsedRank(parsed: ParsedPeftState, what: string): number {
  const ranks = new Set([...parsed.adapters.values()].map((t) => t.a.shape[0] as number));
  if (ranks.size !== 1) {
    throw new InvalidArgumentError(
      `${what}: adapters of different ranks (${[...ranks].join(', ')}); a per-module rank_pattern is not supported`,
    );
  }
  return [...ranks][0] as number;
}
