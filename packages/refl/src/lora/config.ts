/**
 * The LoRA hyperparameters, named and defaulted as the reference sets them (its model.lora block:
 * use_lora, lora_rank 128, target_modules ["q", "k", "v", "o"], resume_lora_path; it builds PEFT's
 * LoraConfig with lora_alpha = lora_rank, so scaling = alpha / rank = 1).
 */
import { assertFiniteInRange, InvalidArgumentError } from '@prfl/tensor';
import { checkBlockRange } from '../trainable.js';

export interface LoraOptions {
  /** r, the adapters' rank. Reference: 128. */
  rank?: number;
  /** lora_alpha; scaling = alpha / rank (or alpha / sqrt(rank) with useRslora). Default: rank (the reference). */
  alpha?: number;
  /**
   * PEFT's target_modules. A list matches a Linear layer whose module name equals an entry or ends with
   * '.' + entry, so 'q' adapts both `self_attn.q` and `cross_attn.q` (as in the reference); use
   * 'self_attn.q' for self-attention only, 'ffn.0' / 'ffn.2' for the FFN. A string is a regular
   * expression the whole module name must match. Default ['q', 'k', 'v', 'o'].
   */
  targetModules?: readonly string[] | string;
  /** Only layers inside blocks lo..hi (both inclusive). Default (or null): every block. */
  blocks?: readonly [number, number] | null;
  /** PEFT's use_rslora: scaling = alpha / sqrt(rank). Default false. */
  useRslora?: boolean;
  /** Seed of lora_A's initialisation (B starts at zero). Default 0. */
  seed?: number;
}

export interface ResolvedLoraOptions {
  rank: number;
  alpha: number;
  targetModules: readonly string[] | string;
  blocks: readonly [number, number] | null;
  useRslora: boolean;
  seed: number;
}

/** The reference's target modules. */
export const LORA_TARGET_MODULES: readonly string[] = Object.freeze(['q', 'k', 'v', 'o']);

/** The reference's LoRA settings (alpha follows rank when not given). */
export const LORA_DEFAULTS = Object.freeze({
  rank: 128,
  targetModules: LORA_TARGET_MODULES,
  useRslora: false,
  seed: 0,
});

/** Fills in defaults and checks every field; errors name the field, what it accepts and what arrived. */
export function resolveLoraOptions(options: LoraOptions, what = 'lora'): ResolvedLoraOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(
      `${what}: expected { rank?, alpha?, targetModules?, blocks?, useRslora?, seed? }, got ${JSON.stringify(options)}`,
    );
  }
  const known = new Set(['rank', 'alpha', 'targetModules', 'blocks', 'useRslora', 'seed']);
  const unknown = Object.keys(options).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `${what}: unknown key(s) ${unknown.join(', ')}; expected rank, alpha, targetModules, blocks, useRslora, seed`,
    );
  }
  const rank = options.rank ?? LORA_DEFAULTS.rank;
  if (!Number.isInteger(rank) || rank < 1) {
    throw new InvalidArgumentError(`${what}.rank: expected a positive integer, got ${String(rank)}`);
  }
  const alpha = options.alpha ?? rank;
  assertFiniteInRange(`${what}.alpha`, alpha, 0);
  const targetModules = options.targetModules ?? LORA_DEFAULTS.targetModules;
  checkTargetModules(`${what}.targetModules`, targetModules);
  if (options.blocks != null) checkBlockRange(`${what}.blocks`, options.blocks);
  const useRslora = options.useRslora ?? LORA_DEFAULTS.useRslora;
  if (typeof useRslora !== 'boolean') {
    throw new InvalidArgumentError(`${what}.useRslora: expected true or false, got ${String(useRslora)}`);
  }
  const seed = options.seed ?? LORA_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(`${what}.seed: expected a safe integer, got ${String(seed)}`);
  }
  return {
    rank,
    alpha,
    targetModules: typeof targetModules === 'string' ? targetModules : Object.freeze([...targetModules]),
    blocks: options.blocks != null ? [options.blocks[0], options.blocks[1]] : null,
    useRslora,
    seed,
  };
}

function checkTargetModules(what: string, t: unknown): void {
  if (typeof t === 'string') {
    try {
      new RegExp(t);
    } catch (e) {
      throw new InvalidArgumentError(`${what}: not a valid regular expression (${(e as Error).message})`);
    }
    return;
  }
  if (!Array.isArray(t) || t.length === 0 || t.some((m) => typeof m !== 'string' || m.length === 0)) {
    throw new InvalidArgumentError(
      `${what}: expected a non-empty array of module names (e.g. ['q', 'k', 'v', 'o']) or a regex string, got ${JSON.stringify(t)}`,
    );
  }
}

/** PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(rank: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}
