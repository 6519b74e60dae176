/**
 * Every configuration key of the `prfl` command: its type, default, range and help text.
 *
 * Keys follow the PyTorch reference's config layout (model.*, extra_model.scheduler.*, dataset.*,
 * optimizer.*, train.*, eval.*, save.*, lrm.*) wherever the reference has the key, so that its YAML files
 * read here unchanged for those keys; keys of our own live under `prfl.`. Defaults come from the library
 * packages' own default tables (PRFL_DEFAULTS, LORA_DEFAULTS, PAPER_HEAD_HIDDEN, PRFL_SHIFT), so the
 * command and the libraries cannot drift apart. The few numbers with no exported constant say where
 * they come from.
 */
import { LORA_DEFAULTS, PRFL_DEFAULTS } from '@prfl/refl';
import { PAPER_HEAD_HIDDEN, PRFL_SHIFT } from '@prfl/reward';

/** A value a configuration key can hold. */
export type ConfigValue = number | boolean | string | readonly string[] | null;

/** The kinds of value; `path` is a string, `list` a list of strings, `enum` one of `values`. */
export type ConfigType = 'number' | 'integer' | 'boolean' | 'string' | 'path' | 'list' | 'enum';

export interface ConfigKey {
  /** Dotted name, e.g. `optimizer.learning_rate`. */
  readonly key: string;
  readonly type: ConfigType;
  readonly default: ConfigValue;
  /** One sentence for --help, the README and error messages. */
  readonly help: string;
  /** null is accepted (paths that are optional, a clip that can be switched off). */
  readonly nullable?: boolean;
  /** Inclusive bounds of numbers, unless the `*Exclusive` flag says otherwise. */
  readonly min?: number;
  readonly max?: number;
  readonly minExclusive?: boolean;
  readonly maxExclusive?: boolean;
  /** The choices of an `enum`. */
  readonly values?: readonly string[];
  /** True for keys of the PyTorch reference's layout, false for prfl's own (`prfl.*`). */
  readonly reference: boolean;
}

/** PAVRM pooling names of the reference's `lrm.pool`, and @prfl/reward's aggregation for each. */
export const POOL_AGGREGATION = Object.freeze({
  q_attn: 'query-attention',
  max: 'max',
  mean: 'mean',
} as const);

/** `lrm.loss`: pointwise binary cross-entropy or Bradley-Terry on pairs. */
export const LRM_LOSSES = Object.freeze(['ce', 'bt'] as const);

const path = (key: string, help: string): ConfigKey => ({
  key,
  type: 'path',
  default: null,
  nullable: true,
  help,
  reference: true,
});

/**
 * The schema, in the order the README's table and `config.resolved.yaml` show it.
 */
export const CONFIG_SCHEMA: readonly ConfigKey[] = Object.freeze([
  path(
    'model.base_path',
    'Wan DiT folder (config.json + safetensors) of the base generator; null: the embedded DiT.',
  ),
  path('model.init_transformer_path', 'Weights that replace the base DiT weights before training.'),
  path('model.resume_transformer_path', 'Generator weights to resume training from.'),
  path('model.lrm_transformer_path', 'The PAVRM backbone weights (its first DiT blocks).'),
  path('model.lrm_mlp_path', 'The PAVRM MLP head weights.'),
  path('model.lrm_query_attention_path', 'The PAVRM query-attention weights.'),
  {
    key: 'model.lora.use_lora',
    type: 'boolean',
    default: PRFL_DEFAULTS.lora !== null,
    help: 'Train LoRA adapters instead of the full generator.',
    reference: true,
  },
  {
    key: 'model.lora.lora_rank',
    type: 'integer',
    default: LORA_DEFAULTS.rank,
    min: 1,
    help: 'LoRA rank r (alpha = r, as in the reference).',
    reference: true,
  },
  {
    key: 'model.lora.target_modules',
    type: 'list',
    default: [...LORA_DEFAULTS.targetModules],
    help: "Linear layers that get adapters ('q' matches self_attn.q and cross_attn.q).",
    reference: true,
  },
  {
    key: 'model.ema.use_ema',
    type: 'boolean',
    default: PRFL_DEFAULTS.emaDecay !== null,
    help: 'Keep an exponential moving average of the trained weights.',
    reference: true,
  },
  {
    key: 'model.ema.ema_decay',
    type: 'number',
    // The reference's EMA decay; PRFL_DEFAULTS keeps no EMA (emaDecay null), so there is no constant.
    default: 0.99,
    min: 0,
    max: 1,
    minExclusive: true,
    maxExclusive: true,
    help: 'Decay of the EMA when use_ema is true.',
    reference: true,
  },
  {
    key: 'model.gradient_checkpointing',
    type: 'boolean',
    default: PRFL_DEFAULTS.gradientCheckpointing !== null,
    help: 'Recompute each DiT block in the backward pass instead of keeping its activations.',
    reference: true,
  },
  {
    key: 'extra_model.scheduler.flow_shift',
    type: 'number',
    default: PRFL_SHIFT,
    min: 0,
    minExclusive: true,
    help: 'Shift of the flow-matching noise schedules (sampling and training).',
    reference: true,
  },
  {
    key: 'extra_model.scheduler.num_train_timesteps',
    type: 'integer',
    // diffusers' and Wan's scheduler default.
    default: 1000,
    min: 1,
    help: 'Length of the training timestep grid (timestep = sigma * this).',
    reference: true,
  },
  {
    key: 'dataset.meta_file_list',
    type: 'list',
    default: [],
    help: 'Lists of meta files of the training videos (the winners, for pairs).',
    reference: true,
  },
  {
    key: 'dataset.meta_file_lose_list',
    type: 'list',
    default: [],
    help: 'Lists of meta files of the losing videos of preference pairs.',
    reference: true,
  },
  {
    key: 'dataset.val_meta_file_list',
    type: 'list',
    default: [],
    help: 'Lists of meta files of the validation videos.',
    reference: true,
  },
  {
    key: 'dataset.uncond_prob',
    type: 'number',
    default: PRFL_DEFAULTS.textDropout,
    min: 0,
    max: 1,
    help: 'Probability of replacing a sample’s text by the empty prompt (text dropout).',
    reference: true,
  },
  {
    key: 'dataset.batch_size',
    type: 'integer',
    default: 1,
    min: 1,
    help: 'Videos per micro-step.',
    reference: true,
  },
  {
    key: 'optimizer.learning_rate',
    type: 'number',
    default: PRFL_DEFAULTS.lr,
    min: 0,
    minExclusive: true,
    help: 'AdamW learning rate of the generator (PRFL) or of the PAVRM backbone blocks.',
    reference: true,
  },
  {
    key: 'optimizer.learning_rate_mlp',
    type: 'number',
    // The paper's PAVRM head rate, PavrmTrainer's lrHead default (docs/method.md section 4).
    default: 1e-5,
    min: 0,
    minExclusive: true,
    help: 'AdamW learning rate of the PAVRM head (query attention and MLP).',
    reference: true,
  },
  {
    key: 'optimizer.adam_beta1',
    type: 'number',
    default: PRFL_DEFAULTS.betas[0],
    min: 0,
    max: 1,
    maxExclusive: true,
    help: 'AdamW beta1.',
    reference: true,
  },
  {
    key: 'optimizer.adam_beta2',
    type: 'number',
    default: PRFL_DEFAULTS.betas[1],
    min: 0,
    max: 1,
    maxExclusive: true,
    help: 'AdamW beta2.',
    reference: true,
  },
  {
    key: 'optimizer.weight_decay',
    type: 'number',
    default: PRFL_DEFAULTS.weightDecay,
    min: 0,
    help: 'AdamW decoupled weight decay.',
    reference: true,
  },
  {
    key: 'optimizer.max_train_steps',
    type: 'integer',
    default: 1000,
    min: 1,
    help: 'Micro-steps to train for.',
    reference: true,
  },
  {
    key: 'train.seed',
    type: 'integer',
    default: PRFL_DEFAULTS.seed,
    min: 0,
    help: 'Seed of every random draw of training.',
    reference: true,
  },
  {
    key: 'train.save_interval',
    type: 'integer',
    default: 100,
    min: 1,
    help: 'Write a resumable checkpoint every this many micro-steps.',
    reference: true,
  },
  {
    key: 'train.gradient_accumulation_steps',
    type: 'integer',
    default: PRFL_DEFAULTS.accumulationSteps,
    min: 1,
    help: 'Micro-steps per optimizer update.',
    reference: true,
  },
  {
    key: 'eval.seed',
    type: 'integer',
    default: 0,
    min: 0,
    help: 'Seed of evaluation noise (and of the noise `score` adds at eval.timestep > 0).',
    reference: true,
  },
  {
    key: 'eval.timestep',
    type: 'number',
    default: 0,
    min: 0,
    max: 1000,
    help: 'Timestep (sigma * 1000) at which the PAVRM scores a clean video; 0 reads it clean.',
    reference: true,
  },
  path('save.output_dir', 'Where checkpoints and samples go; null: the run folder.'),
  {
    key: 'lrm.feature_layer',
    type: 'integer',
    // K = 8 of Wan's 40 blocks in the paper (docs/method.md section 4).
    default: 8,
    min: 1,
    help: 'K: the PAVRM reads the residual stream after the first K DiT blocks.',
    reference: true,
  },
  {
    key: 'lrm.pool',
    type: 'enum',
    default: 'q_attn',
    values: Object.keys(POOL_AGGREGATION),
    help: 'How the PAVRM pools its tokens: query attention, max or mean.',
    reference: true,
  },
  {
    key: 'lrm.mlp_dim',
    type: 'integer',
    default: PAPER_HEAD_HIDDEN[0] as number,
    min: 1,
    help: 'Width of the first hidden layer of the PAVRM MLP head.',
    reference: true,
  },
  {
    key: 'lrm.loss',
    type: 'enum',
    default: 'ce',
    values: LRM_LOSSES,
    help: 'PAVRM loss: pointwise binary cross-entropy (ce) or Bradley-Terry on pairs (bt).',
    reference: true,
  },
  {
    key: 'prfl.sampling.num_steps',
    type: 'integer',
    default: PRFL_DEFAULTS.numSteps,
    min: 1,
    help: 'Denoising steps of sampling and of PRFL rollouts (flow UniPC).',
    reference: false,
  },
  {
    key: 'prfl.sampling.guidance_scale',
    type: 'number',
    // Wan2.1's classifier-free guidance, WanPipeline's default (docs/method.md section 3.2).
    default: 5,
    min: 0,
    help: 'Classifier-free guidance scale of sampling (1: no guidance).',
    reference: false,
  },
  {
    key: 'prfl.reward_weight',
    type: 'number',
    default: PRFL_DEFAULTS.rewardWeight,
    min: 0,
    help: 'lambda, the weight of the process-reward term of PRFL.',
    reference: false,
  },
  {
    key: 'prfl.hinge_target',
    type: 'number',
    default: PRFL_DEFAULTS.hingeTarget,
    help: 'Target of the reward hinge relu(target - sigmoid(r)).',
    reference: false,
  },
  {
    key: 'prfl.sft_weight',
    type: 'number',
    default: PRFL_DEFAULTS.sftWeight,
    min: 0,
    help: 'Weight of the flow-matching SFT term (0 drops it).',
    reference: false,
  },
  {
    key: 'prfl.max_grad_norm',
    type: 'number',
    default: PRFL_DEFAULTS.maxGradNorm,
    nullable: true,
    min: 0,
    minExclusive: true,
    help: 'Global gradient-norm clip; null: no clipping.',
    reference: false,
  },
] satisfies ConfigKey[]);

/** The schema by key. */
export const SCHEMA_BY_KEY: ReadonlyMap<string, ConfigKey> = new Map(CONFIG_SCHEMA.map((k) => [k.key, k]));

/** Every section prefix (`model`, `model.lora`, ...), for telling a section from a key. */
export const CONFIG_SECTIONS: ReadonlySet<string> = new Set(
  CONFIG_SCHEMA.flatMap((k) => {
    const parts = k.key.split('.');
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
  }),
);

/** What a key accepts, in words: "a number in (0, 1)", "one of q_attn, max, mean". */
export function describeExpected(spec: ConfigKey): string {
  const base = (() => {
    switch (spec.type) {
      case 'number':
      case 'integer': {
        const what = spec.type === 'integer' ? 'an integer' : 'a number';
        const lo = spec.min;
        const hi = spec.max;
        if (lo !== undefined && hi !== undefined) {
          return `${what} in ${spec.minExclusive ? '(' : '['}${lo}, ${hi}${spec.maxExclusive ? ')' : ']'}`;
        }
        if (lo !== undefined) return `${what} ${spec.minExclusive ? '>' : '>='} ${lo}`;
        if (hi !== undefined) return `${what} ${spec.maxExclusive ? '<' : '<='} ${hi}`;
        return what;
      }
      case 'boolean':
        return 'true or false';
      case 'string':
        return 'a string';
      case 'path':
        return 'a path';
      case 'list':
        return 'a list of strings';
      case 'enum':
        return `one of ${(spec.values ?? []).join(', ')}`;
    }
  })();
  return spec.nullable ? `${base} or null` : base;
}

/** The default as text for tables and help: `5e-6`, `[q, k, v, o]`, `null`. */
export function formatValue(value: ConfigValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  return String(value);
}
