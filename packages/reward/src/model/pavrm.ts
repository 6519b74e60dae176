/**
 * PAVRM, the process-aware video reward model (docs/method.md §4): a video generator's first K transformer blocks
 * read a *noisy* latent at its timestep; their tokens are pooled by query attention and an MLP turns the
 * pooled vector into one logit; reward probability = sigmoid(logit).
 *
 *     x_sigma, t, text ──► backbone (embeddings + K blocks) ──► tokens [B, N, D]
 *                      ──► aggregation (query attention: z = attn(q, tokens) + q) ──► z [B, D]
 *                      ──► MLP D -> 1024 -> 512 -> 1 ──► logit [B]
 *
 * The backbone is anything implementing @prfl/tensor's FeatureBackbone (e.g. @prfl/models'
 * `WanDiT.truncate(8)`); PAVRM owns only the aggregation and head variables. For token features
 * computed elsewhere, `Pavrm.forFeatures(D)` builds the head alone and `scoreFeatures(tokens)` scores them.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  type FeatureBackbone,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentRewardModel,
  type LatentVideo,
  type ReplicaRecipe,
  PrflError,
  type Timestep,
  type TimestepOptions,
  type TimestepsLike,
  type TokenSequence,
  validateTimesteps,
  type FiniteCheck,
  finiteCheckActive,
} from '@prfl/tensor';
import { maxPool, meanPool } from '../aggregation/pooling.js';
import { queryAttention } from '../aggregation/query-attention.js';
import { assertFiniteTensor, assertLatentVideo } from '../validate.js';
import {
  type Aggregation,
  type HeadParamSpec,
  headParamSpecs,
  MLP_PREFIX,
  type PavrmHeadConfig,
  QUERY_ATTENTION_PREFIX,
  validateHeadConfig,
} from './head-params.js';
import { linearDefaultUniform, xavierUniform } from './init.js';
import { type LinearWeights, mlpHead, PAPER_HEAD_HIDDEN } from './mlp-head.js';
import { PrecomputedFeatures } from './precomputed-features.js';
import type { PavrmReplicaSpec } from '../parallel/replica.js';

/** Everything that defines a PAVRM's architecture besides the backbone itself. */
export interface PavrmConfig extends PavrmHeadConfig {
  /** K: how many backbone blocks the features pass through. */
  blocks: number;
}

export interface PavrmOptions {
  /** K, backbone blocks to run (default: all of the backbone's, i.e. a backbone already truncated to K). */
  blocks?: number;
  /** Default 'query-attention' (the paper's). */
  aggregation?: Aggregation;
  /** Query-attention heads. Default 8 (paper), or fewer when the feature width is not divisible by 8. */
  numHeads?: number;
  /** MLP hidden widths. Default [1024, 512] (paper). */
  hidden?: readonly number[];
  /** Seed of the head's initialisation. Default 0. */
  seed?: number | string;
  /** Prefix of the tfjs variable names (tfjs names are global). Default a fresh `pavrm_<n>`. */
  name?: string;
  /**
   * Initial head values in tfjs layout by stable name (`mlp.fc1.weight`, ...), instead of random init:
   * what the loaders pass. Must hold exactly the head's parameters; copied.
   */
  headWeights?: ReadonlyMap<string, tf.Tensor>;
  /**
   * Check every scored latent (and every token batch given to `scoreFeatures`) for NaN/Inf (one small
   * device read per call) and fail with a clear error instead of returning NaN rewards. Default `'auto'` (every backend but webgpu; see `FiniteCheck`).
   */
  checkFinite?: FiniteCheck;
}

let instances = 0;

function defaultHeads(featureDim: number): number {
  for (const h of [8, 4, 2, 1]) if (featureDim % h === 0) return h;
  return 1;
}

function initialValue(spec: HeadParamSpec, gen: Generator): tf.Tensor {
  const init = spec.init;
  switch (init.kind) {
    case 'zeros':
      return tf.zeros(spec.shape);
    case 'xavier':
      return xavierUniform(gen, spec.shape, init.fanIn, init.fanOut);
    case 'linear-default':
      return linearDefaultUniform(gen, spec.shape, init.fanIn);
  }
}

/** PAVRM as a @prfl/tensor LatentRewardModel: `score(x_sigma, timesteps, conditioning)` -> logits [B]. */
export class Pavrm implements LatentRewardModel {
  readonly backbone: FeatureBackbone;
  readonly config: Readonly<PavrmConfig>;
  /** Prefix of the head's tfjs variable names. */
  readonly name: string;
  readonly checkFinite: FiniteCheck;
  readonly #head = new Map<string, tf.Variable>();
  readonly #specs: readonly HeadParamSpec[];
  #disposed = false;

  /**
   * @throws InvalidArgumentError for a bad configuration, `blocks` beyond the backbone's, head weights
   *   that do not match the configuration, or a backbone variable name that collides with the head's.
   */
  constructor(backbone: FeatureBackbone, options: PavrmOptions = {}) {
    if (
      backbone === null ||
      typeof backbone !== 'object' ||
      typeof backbone.features !== 'function' ||
      typeof backbone.namedVariables !== 'function'
    ) {
      throw new InvalidArgumentError(
        'Pavrm: backbone must implement FeatureBackbone (featureDim, numBlocks, features(), namedVariables())',
      );
    }
    const blocks = options.blocks ?? backbone.numBlocks;
    if (!Number.isInteger(blocks) || blocks < 0 || blocks > backbone.numBlocks) {
      throw new InvalidArgumentError(
        `Pavrm: blocks must be an integer in [0, ${backbone.numBlocks}] (the backbone's numBlocks), got ${String(blocks)}`,
      );
    }
    const head = validateHeadConfig({
      featureDim: backbone.featureDim,
      aggregation: options.aggregation ?? 'query-attention',
      numHeads: options.numHeads ?? defaultHeads(backbone.featureDim),
      hidden: options.hidden ?? PAPER_HEAD_HIDDEN,
    });
    this.backbone = backbone;
    this.config = Object.freeze({ ...head, hidden: Object.freeze([...head.hidden]), blocks });
    this.name = options.name ?? `pavrm_${++instances}`;
    this.checkFinite = options.checkFinite ?? 'auto';
    this.#specs = headParamSpecs(head);

    for (const name of backbone.namedVariables().keys()) {
      if (name.startsWith(QUERY_ATTENTION_PREFIX) || name.startsWith(MLP_PREFIX)) {
        throw new InvalidArgumentError(
          `Pavrm: the backbone has a variable '${name}', which collides with the head's names (${QUERY_ATTENTION_PREFIX}*, ${MLP_PREFIX}*)`,
        );
      }
    }
    const weights = options.headWeights;
    if (weights !== undefined) checkHeadWeights(this.#specs, weights, 'Pavrm headWeights');
    const gen = new Generator(options.seed ?? 0);
    try {
      for (const spec of this.#specs) {
        const given = weights?.get(spec.name);
        const v = tf.tidy(() =>
          tf.variable(
            given !== undefined ? tf.cast(given, 'float32') : initialValue(spec, gen.derive(spec.name)),
            true,
            `${this.name}/${spec.name}`,
          ),
        );
        this.#head.set(spec.name, v);
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * A PAVRM head alone, for token features [B, N, featureDim] computed elsewhere (cached from a
   * generator's first K blocks, another runtime, ...): its backbone is a `PrecomputedFeatures` of that
   * width, with no blocks and no variables. Score with `scoreFeatures(tokens)` (differentiable; train
   * the head on `headVariables()`); `score(x, ...)` on latents is refused. Saves and loads like any PAVRM
   * (the backbone part is empty).
   */
  static forFeatures(featureDim: number, options: Omit<PavrmOptions, 'blocks'> = {}): Pavrm {
    return new Pavrm(new PrecomputedFeatures(featureDim), options);
  }

  /** The head's parameter table (names, both layouts, init). */
  headParamSpecs(): readonly HeadParamSpec[] {
    return this.#specs;
  }

  /**
   * How a worker thread builds a PAVRM of this architecture (@prfl/reward/parallel's data-parallel
   * training): the backbone's own recipe and this head's configuration; the weights reach it separately.
   * @throws InvalidArgumentError when the backbone has no `replicaRecipe()` (@prfl/models' DiT backbones do).
   */
  replicaRecipe(): ReplicaRecipe {
    const backbone = this.backbone as Partial<{ replicaRecipe(): ReplicaRecipe }>;
    if (typeof backbone.replicaRecipe !== 'function') {
      throw new InvalidArgumentError(
        'Pavrm.replicaRecipe: the backbone has no replicaRecipe(), so a worker thread cannot build it (the DiT backbones of @prfl/models have one)',
      );
    }
    const { blocks, aggregation, numHeads, hidden } = this.config;
    const spec: PavrmReplicaSpec = {
      backbone: backbone.replicaRecipe(),
      options: { blocks, aggregation, numHeads, hidden: [...hidden], checkFinite: this.checkFinite },
    };
    return { module: '@prfl/reward', export: 'pavrmReplica', spec };
  }

  /** The aggregation and MLP variables under their stable names (`query_attention.*`, `mlp.*`). */
  headVariables(): ReadonlyMap<string, tf.Variable> {
    return this.#head;
  }

  /**
   * Every variable under its stable name: the backbone's names as the backbone gives them (Wan keys for
   * @prfl/models) and the head's. `variable.trainable` says which train.
   */
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return new Map([...this.backbone.namedVariables(), ...this.#head]);
  }

  /** The variables training updates: the backbone's trainable ones and the whole head. */
  trainableVariables(): { backbone: tf.Variable[]; head: tf.Variable[] } {
    return {
      backbone: [...this.backbone.namedVariables().values()].filter((v) => v.trainable),
      head: [...this.#head.values()].filter((v) => v.trainable),
    };
  }

  /** The backbone's tokens after K blocks, [B, N, D]. Inputs are checked as by `score`. */
  features(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: TimestepOptions = {},
  ): TokenSequence {
    this.#checkLive();
    const ts = this.#checkInputs(x, timesteps, options);
    const tokens = this.backbone.features(x, ts, conditioning, this.config.blocks, options);
    const [b] = x.shape;
    if (
      !(tokens instanceof tf.Tensor) ||
      tokens.rank !== 3 ||
      tokens.shape[0] !== b ||
      tokens.shape[2] !== this.config.featureDim
    ) {
      const got = tokens instanceof tf.Tensor ? formatShape(tokens.shape) : typeof tokens;
      tf.dispose(tokens);
      throw new PrflError(
        `Pavrm: backbone.features returned ${got}, expected [${b}, N, ${this.config.featureDim}] (featureDim)`,
      );
    }
    return tokens;
  }

  /** Tokens [B, N, D] -> pooled z [B, D] with the configured aggregation. */
  aggregate(tokens: tf.Tensor): tf.Tensor2D {
    this.#checkLive();
    const { aggregation, numHeads } = this.config;
    switch (aggregation) {
      case 'mean':
        return meanPool(tokens);
      case 'max':
        return maxPool(tokens);
      default:
        return queryAttention(
          tokens,
          {
            queries: this.#var('query_attention.queries'),
            inProjWeight: this.#var('query_attention.multihead_attn.in_proj_weight'),
            inProjBias: this.#var('query_attention.multihead_attn.in_proj_bias'),
            outProjWeight: this.#var('query_attention.multihead_attn.out_proj.weight'),
            outProjBias: this.#var('query_attention.multihead_attn.out_proj.bias'),
          },
          { numHeads, residual: aggregation === 'query-attention' },
        );
    }
  }

  /**
   * Token features [B, N, D] -> logits [B] (aggregation + MLP): the head on features computed elsewhere
   * (see `forFeatures`), or on this model's own `features`. Differentiable in the tokens and the head.
   * @throws InvalidArgumentError for tokens that are not a float32 [B, N, featureDim] tensor with B, N
   *   >= 1, or hold NaN/Inf (with `checkFinite`).
   */
  scoreFeatures(tokens: tf.Tensor): tf.Tensor1D {
    this.#checkLive();
    this.#checkTokens(tokens);
    return tf.tidy(() => mlpHead(this.aggregate(tokens), this.#mlpLayers()));
  }

  /** Reward probabilities sigmoid(scoreFeatures(tokens)) [B] for token features [B, N, D]. */
  probabilityFromFeatures(tokens: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sigmoid(this.scoreFeatures(tokens)));
  }

  /**
   * Logits [B] for noisy latents x_sigma [B, F, H, W, C] at one timestep value (sigma * 1000) per batch
   * element, or one for all (an array, a typed array or a 1-D tensor). Differentiable in x and every
   * variable.
   * @throws InvalidArgumentError for a latent that is not rank 5, timesteps that do not match the batch
   *   or look like sigmas (all below 1; `options.allowSmallTimesteps` accepts them), or NaN/Inf in x
   *   (with `checkFinite`).
   */
  score(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: TimestepOptions = {},
  ): tf.Tensor1D {
    return tf.tidy(() => this.#headOn(this.features(x, timesteps, conditioning, options)));
  }

  /** Reward probabilities sigmoid(score) [B]. */
  probability(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: TimestepOptions = {},
  ): tf.Tensor1D {
    return tf.tidy(() => tf.sigmoid(this.score(x, timesteps, conditioning, options)));
  }

  /** Frees the head's variables (not the backbone's, which the caller owns). */
  dispose(): void {
    for (const v of this.#head.values()) v.dispose();
    this.#head.clear();
    this.#disposed = true;
  }

  /** Aggregation + MLP on tokens the backbone returned (already checked by `features`). */
  #headOn(tokens: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => mlpHead(this.aggregate(tokens), this.#mlpLayers()));
  }

  #checkTokens(tokens: unknown): asserts tokens is tf.Tensor3D {
    const d = this.config.featureDim;
    if (!(tokens instanceof tf.Tensor)) {
      throw new InvalidArgumentError(
        `tokens: expected token features [B, N, ${d}] (featureDim ${d}), got ${tokens === null ? 'null' : typeof tokens}`,
      );
    }
    if (tokens.rank !== 3 || tokens.shape[2] !== d || tokens.shape[0] < 1 || tokens.shape[1] < 1) {
      throw new InvalidArgumentError(
        `tokens: expected token features [B, N, ${d}] (featureDim ${d}, B and N >= 1), got ${formatShape(tokens.shape)}`,
      );
    }
    if (tokens.dtype !== 'float32') {
      throw new InvalidArgumentError(
        `tokens: expected float32, got ${tokens.dtype} ${formatShape(tokens.shape)}`,
      );
    }
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('tokens', tokens);
  }

  #mlpLayers(): LinearWeights[] {
    const layers: LinearWeights[] = [];
    for (let i = 1; i <= this.config.hidden.length + 1; i++) {
      layers.push({ weight: this.#var(`mlp.fc${i}.weight`), bias: this.#var(`mlp.fc${i}.bias`) });
    }
    return layers;
  }

  #var(name: string): tf.Variable {
    const v = this.#head.get(name);
    if (v === undefined) throw new PrflError(`Pavrm ${this.name}: no head parameter ${name}`);
    return v;
  }

  #checkInputs(x: LatentVideo, timesteps: TimestepsLike, options: TimestepOptions): Timestep[] {
    assertLatentVideo('x', x);
    const ts = validateTimesteps('timesteps', timesteps, x.shape[0], options);
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('x', x);
    return ts;
  }

  #checkLive(): void {
    if (this.#disposed) throw new PrflError(`Pavrm ${this.name}: the model has been disposed`);
  }
}

/** Checks head weights (tfjs layout) against the table: exactly the expected names and shapes. */
export function checkHeadWeights(
  specs: readonly HeadParamSpec[],
  weights: ReadonlyMap<string, tf.Tensor>,
  what: string,
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !weights.has(s.name)).map((s) => s.name);
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`unexpected ${unexpected.join(', ')}`);
    throw new InvalidArgumentError(`${what}: ${parts.join('; ')}`);
  }
  for (const s of specs) {
    const t = weights.get(s.name) as tf.Tensor;
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new InvalidArgumentError(
        `${what}: ${s.name} has shape ${formatShape(t.shape)}, expected ${formatShape(s.shape)}`,
      );
    }
  }
}
