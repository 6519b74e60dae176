/**
 * adapter_config.json, PEFT's LoraConfig as save_pretrained writes it: r, lora_alpha, target_modules and
 * the switches whose non-default values would change what the weights mean (use_rslora, use_dora, bias,
 * fan_in_fan_out, rank/alpha patterns, modules_to_save). Written with the fields PEFT reads; read back
 * only for what plain LoRA needs, refusing the variants this package does not compute.
 */
import { CorruptFileError } from '@prfl/tensor';
import type { LoraAdapters } from './lora-adapters.js';

export const PEFT_CONFIG_FILE = 'adapter_config.json';

/** What is read from an adapter_config.json. */
export interface PeftLoraConfig {
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  /** As written: a list of module names or a regex string (informational: the weights' keys decide). */
  targetModules: readonly string[] | string | null;
}

/**
 * The config of `lora`. `target_modules` is what the adapters were built with, except with a block range
 * (which PEFT expresses as layers_to_transform but cannot apply to Wan's top-level `blocks.<i>`: its
 * layer regex needs a '.' before the pattern), where it lists the adapted modules by their full names.
 */
export function peftLoraConfig(lora: LoraAdapters, baseModel: string | null = null): Record<string, unknown> {
  const o = lora.options;
  return {
    alpha_pattern: {},
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: o.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: 'LORA',
    r: o.rank,
    rank_pattern: {},
    revision: null,
    target_modules:
      o.blocks !== null
        ? lora.modules
        : typeof o.targetModules === 'string'
          ? o.targetModules
          : [...o.targetModules],
    task_type: null,
    use_dora: false,
    use_rslora: o.useRslora,
  };
}

function isEmpty(x: unknown): boolean {
  return (
    x === undefined ||
    x === null ||
    (Array.isArray(x) && x.length === 0) ||
    (typeof x === 'object' && Object.keys(x as object).length === 0)
  );
}

/**
 * Parses the text of an adapter_config.json.
 * @throws CorruptFileError for JSON that is not a LoRA config, a missing or bad r / lora_alpha, or a
 *   variant plain LoRA does not compute (DoRA, biases, fan_in_fan_out, rank or alpha patterns,
 *   modules_to_save), each named.
 */
export function parsePeftLoraConfig(text: string, file: string): PeftLoraConfig {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new CorruptFileError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    throw new CorruptFileError(`${file}: expected a JSON object, got ${JSON.stringify(c)}`);
  }
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') {
    throw new CorruptFileError(`${file}: peft_type: expected 'LORA', got ${JSON.stringify(c.peft_type)}`);
  }
  const r = c.r;
  if (!Number.isInteger(r) || (r as number) < 1) {
    throw new CorruptFileError(`${file}: r: expected a positive integer, got ${JSON.stringify(r)}`);
  }
  const alpha = c.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha < 0) {
    throw new CorruptFileError(
      `${file}: lora_alpha: expected a non-negative number, got ${JSON.stringify(alpha)}`,
    );
  }
  const unsupported: [string, boolean][] = [
    ['use_dora: true (DoRA)', c.use_dora === true],
    [`bias: ${JSON.stringify(c.bias)} (LoRA biases)`, c.bias !== undefined && c.bias !== 'none'],
    ['lora_bias: true', c.lora_bias === true],
    ['fan_in_fan_out: true', c.fan_in_fan_out === true],
    ['rank_pattern (per-module ranks)', !isEmpty(c.rank_pattern)],
    ['alpha_pattern (per-module alphas)', !isEmpty(c.alpha_pattern)],
    ['modules_to_save', !isEmpty(c.modules_to_save)],
  ];
  const bad = unsupported.filter(([, is]) => is).map(([name]) => name);
  if (bad.length > 0) {
    throw new CorruptFileError(`${file}: ${bad.join(', ')}: not supported (plain LoRA only)`);
  }
  const t = c.target_modules;
  const targetModules =
    typeof t === 'string' || (Array.isArray(t) && t.every((m) => typeof m === 'string'))
      ? (t as string | string[])
      : null;
  return { r: r as number, loraAlpha: alpha, useRslora: c.use_rslora === true, targetModules };
}
