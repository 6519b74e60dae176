/**
 * The Wan2.1 video DiT as a prfl VelocityModel and FeatureBackbone, and its truncation for PAVRM
 * (docs/method.md §4, §8).
 *
 * Latents are channels-last [B, F, H, W, C]; the forward pass is in forward.ts, the parameter table in
 * params.ts, Wan checkpoint I/O in checkpoint.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertFiniteTensors,
  assertShape,
  type Conditioning,
  type FeatureBackbone,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
  type ReplicaRecipe,
  type Timestep,
  type TimestepOptions,
  type TimestepsLike,
  type TokenSequence,
  type VelocityModel,
  validateTimesteps,
  type FiniteCheck,
  finiteCheckActive,
} from '@prfl/tensor';
import { type WanDiTConfig, type WanDiTPresetName, wanDiTConfig } from './config.js';
import type { WanDiTReplicaSpec } from './replica.js';
import type { PatchGrid } from './embeddings.js';
import {
  embedConditions,
  embedPatches,
  type LinearAdapter,
  type WanDiTContext,
  type WeightLookup,
  wanBlock,
  wanHead,
} from './forward.js';
import { type ParamSpec, wanDiTParamSpecs } from './params.js';
import { type RopeTables, ropeTables } from './rope.js';
import { type WanDiTSegmentChain, type WanDiTSegmentOptions, wanDiTSegments } from './segments.js';
import { type StateDict, stateDictFromVariables, weightsFromStateDict } from './state-dict.js';

export interface WanDiTOptions {
  /** Seed of the initialisation (Wan's init_weights scheme, each parameter from its own named stream). Default 0. */
  seed?: number | string;
  /**
   * Prefix of the tfjs variable names (`<name>/<wan key>`); tfjs variable names are global, so two live
   * models need different names. Default: a fresh `wan_dit_<n>`.
   */
  name?: string;
  /** Initial `variable.trainable` of every parameter (default true: PRFL trains the whole generator). */
  trainable?: boolean;
  /**
   * Initial values in tfjs layout by Wan key, instead of random initialisation (what the checkpoint
   * loader passes). Must hold exactly the config's parameters. The variables share the buffers (tfjs
   * counts references; assigning a variable never writes in place), so the caller may dispose its
   * tensors right after.
   */
  weights?: ReadonlyMap<string, tf.Tensor>;
  /**
   * What a partial config's missing fields are taken from: a preset name or a full config. Default
   * 'wan2.1', Wan's own WanModel defaults (the same rule for every model and loader; docs/models.md).
   */
  base?: WanDiTPresetName | WanDiTConfig;
  /**
   * Refuse NaN/Inf in the latent and the conditioning tensors of every forward pass (default `'auto'`: on cpu, wasm and webgl, not webgpu; see `FiniteCheck`), as
   * the reward models do. Costs one small device read per call (NaN/Inf counts, 2 numbers per tensor);
   * `false` skips it.
   */
  checkFinite?: FiniteCheck;
}

let instances = 0;

function initialValue(spec: ParamSpec, gen: Generator): tf.Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const shape = [...spec.shape];
  const init = spec.init;
  switch (init.kind) {
    case 'zeros':
      return tf.zeros(shape);
    case 'ones':
      return tf.ones(shape);
    case 'normal':
      return tf.tensor(gen.normalArray(n, 0, init.std), shape, 'float32');
    case 'uniform':
      return tf.tensor(gen.uniformArray(n, -init.bound, init.bound), shape, 'float32');
    case 'xavier': {
      const bound = Math.sqrt(6 / (init.fanIn + init.fanOut));
      return tf.tensor(gen.uniformArray(n, -bound, bound), shape, 'float32');
    }
  }
}

/** Checks a weights map against specs: exactly the expected keys, each with the expected tfjs shape. */
export function checkWeights(
  specs: readonly ParamSpec[],
  weights: ReadonlyMap<string, tf.Tensor>,
  what: string,
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !weights.has(s.name)).map((s) => s.name);
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
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

/**
 * What the DiTs share: variables by Wan key, input checks, embeddings, blocks and the RoPE cache. The
 * full model adds the head (`WanDiT`); a truncation has none (`WanDiTBackbone`).
 */
abstract class WanDiTBase implements FeatureBackbone {
  readonly config: WanDiTConfig;
  readonly featureDim: number;
  readonly numBlocks: number;
  /** Prefix of this model's tfjs variable names. */
  readonly name: string;
  /** Whether forward passes refuse NaN/Inf inputs (`WanDiTOptions.checkFinite`). */
  readonly checkFinite: FiniteCheck;
  protected readonly vars = new Map<string, tf.Variable>();
  protected readonly specs: readonly ParamSpec[];
  protected readonly lookup: WeightLookup;
  private readonly ropeCache = new Map<string, RopeTables>();
  private disposed = false;

  protected constructor(
    config: WanDiTConfig,
    numBlocks: number,
    specs: readonly ParamSpec[],
    options: WanDiTOptions,
  ) {
    this.config = config;
    this.featureDim = config.dim;
    this.numBlocks = numBlocks;
    this.name = options.name ?? `wan_dit_${++instances}`;
    this.checkFinite = options.checkFinite ?? 'auto';
    this.specs = specs;
    if (options.weights !== undefined) checkWeights(specs, options.weights, `${this.name} weights`);
    const gen = new Generator(options.seed ?? 0);
    const trainable = options.trainable ?? true;
    try {
      for (const spec of specs) {
        const value = options.weights?.get(spec.name);
        const v = tf.tidy(() =>
          tf.variable(
            // A float32 value is shared, not copied (wasm's Identity kernel would copy it).
            value === undefined
              ? initialValue(spec, gen.derive(spec.name))
              : value.dtype === 'float32'
                ? value
                : tf.cast(value, 'float32'),
            trainable,
            `${this.name}/${spec.name}`,
          ),
        );
        this.vars.set(spec.name, v);
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
    this.lookup = (key: string) => {
      const v = this.vars.get(key);
      if (v === undefined) throw new InvalidArgumentError(`${this.name}: no parameter ${key}`);
      return v;
    };
  }

  /** Every parameter under its Wan key (tfjs layout); `variable.trainable` says which train. */
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  /**
   * Sets (or, with null, clears) a function every Linear layer's output goes through:
   * `(module, input, output) => output'`, `module` being the Wan key without `.weight`. LoRA attaches
   * here (@prfl/refl's LoraAdapters); `predictVelocity`, `features` and `segments` all see it. Copies
   * made by `truncate` do not inherit it.
   */
  setLinearAdapter(adapter: LinearAdapter | null): void {
    this.checkLive();
    if (adapter !== null && typeof adapter !== 'function') {
      throw new InvalidArgumentError(
        `setLinearAdapter: expected a function (module, input, output) => output, or null; got ${typeof adapter}`,
      );
    }
    this.lookup.linearAdapter = adapter;
  }

  /** The parameter table (Wan keys, shapes in both layouts, group, init) of the parameters this model holds. */
  paramSpecs(): readonly ParamSpec[] {
    return this.specs;
  }

  /**
   * The weights as a PyTorch state dict: Wan's keys and PyTorch layouts (Linear [out, in], Conv3d
   * [out, in, t, h, w]), float32. New tensors; the caller disposes them.
   */
  stateDict(): Map<string, tf.Tensor> {
    this.checkLive();
    return stateDictFromVariables(this.specs, this.vars);
  }

  /** The variables whose `trainable` flag is set. */
  trainableVariables(): tf.Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  /**
   * Patch embedding and conditions for one forward pass: tokens [B, N, D] and the context every block
   * reads. The caller disposes both (`context.dispose()`). Building block for `runBlock`, for
   * per-block (segmented) backprop and for tests. Timesteps and inputs are checked as by
   * `predictVelocity`.
   */
  embed(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: TimestepOptions = {},
  ): { tokens: TokenSequence; context: WanDiTContext } {
    this.checkLive();
    const { grid, input, timesteps: ts } = this.checkInputs(x, timesteps, conditioning, options);
    const rope = this.rope(grid);
    const tokens = tf.tidy(() => embedPatches(this.lookup, this.config, input()));
    const context = embedConditions(this.lookup, this.config, {
      grid,
      timesteps: ts,
      text: conditioning.text,
      ...(conditioning.textMask !== undefined ? { textMask: conditioning.textMask } : {}),
      ...(conditioning.image?.tokens !== undefined ? { imageTokens: conditioning.image.tokens } : {}),
      rope,
    });
    return { tokens, context };
  }

  /** Transformer block `index` on tokens [B, N, D]. */
  runBlock(index: number, tokens: TokenSequence, context: WanDiTContext): TokenSequence {
    this.checkLive();
    if (!Number.isInteger(index) || index < 0 || index >= this.numBlocks) {
      throw new InvalidArgumentError(
        `runBlock: index must be an integer in [0, ${this.numBlocks - 1}], got ${index}`,
      );
    }
    return wanBlock(this.lookup, this.config, index, tokens, context);
  }

  /**
   * The residual stream after the first `blocks` blocks (default all), [B, N, D], no final norm (what
   * PAVRM reads). Timesteps and inputs are checked as by `predictVelocity`.
   */
  features(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    blocks: number = this.numBlocks,
    options: TimestepOptions = {},
  ): TokenSequence {
    if (!Number.isInteger(blocks) || blocks < 0 || blocks > this.numBlocks) {
      throw new InvalidArgumentError(
        `features: blocks must be an integer in [0, ${this.numBlocks}], got ${String(blocks)}`,
      );
    }
    return tf.tidy(() => {
      const { tokens, context } = this.embed(x, timesteps, conditioning, options);
      let h = tokens;
      for (let i = 0; i < blocks; i++) h = this.runBlock(i, h, context);
      return h;
    });
  }

  /**
   * The forward pass as a chain of segments (embedding, blocks, head) for @prfl/tensor's segmented
   * backprop, which keeps one segment's tape at a time:
   * `segmentedGradients({ segments: chain.segments, input: chain.input, loss: (a) => f(chain.output(a)) })`
   * gives the gradients `tf.variableGrads` gives over `predictVelocity` (or `features` with `blocks`).
   * Dispose the chain afterwards.
   */
  segments(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: WanDiTSegmentOptions = {},
  ): WanDiTSegmentChain {
    this.checkLive();
    return wanDiTSegments(
      {
        config: this.config,
        numBlocks: this.numBlocks,
        hasHead: this.hasHead,
        lookup: this.lookup,
        prepare: (a, b, c) => {
          const { grid, timesteps: ts } = this.checkInputs(a, b, c, options);
          return { grid, rope: this.rope(grid), timesteps: ts };
        },
      },
      x,
      timesteps,
      conditioning,
      options,
    );
  }

  /** Whether the model ends in Wan's output head (the full model) or not (a truncated backbone). */
  abstract readonly hasHead: boolean;

  /**
   * A feature backbone made of this model's embeddings and first `k` blocks, for PAVRM (docs/method.md §4).
   * It holds *copies* of the weights: training the reward model's blocks does not move the generator,
   * and vice versa. (tfjs shares the buffers until either side assigns, which never writes in place,
   * so the copy costs no memory until then.) Patch, text, time and image embeddings are frozen
   * (`trainable = false`); the k blocks train. The head is dropped. `checkFinite` defaults to this
   * model's.
   */
  truncate(k: number, options: { name?: string; checkFinite?: FiniteCheck } = {}): WanDiTBackbone {
    this.checkLive();
    if (!Number.isInteger(k) || k < 1 || k > this.numBlocks) {
      throw new InvalidArgumentError(
        `truncate: k must be an integer in [1, ${this.numBlocks}], got ${String(k)}`,
      );
    }
    return new WanDiTBackbone(this.config, k, this.vars, {
      ...(options.name !== undefined ? { name: options.name } : {}),
      checkFinite: options.checkFinite ?? this.checkFinite,
    });
  }

  /**
   * How a worker thread builds a model of this architecture (for @prfl/tensor/parallel's ReplicaPool:
   * data-parallel training and generation); the weights reach it separately. See `wanDiTReplica`.
   */
  replicaRecipe(): ReplicaRecipe {
    const spec: WanDiTReplicaSpec = {
      config: this.config,
      blocks: this.numBlocks,
      head: this.hasHead,
      checkFinite: this.checkFinite,
    };
    return { module: '@prfl/models', export: 'wanDiTReplica', spec };
  }

  /** Frees the variables and cached RoPE tables. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.clearCaches();
    this.disposed = true;
  }

  /** Frees the cached RoPE tables (one pair per patch grid seen). */
  clearCaches(): void {
    for (const t of this.ropeCache.values()) tf.dispose([t.cos, t.sin, t.swap]);
    this.ropeCache.clear();
  }

  protected checkLive(): void {
    if (this.disposed) throw new InvalidArgumentError(`${this.name}: the model has been disposed`);
  }

  private rope(grid: PatchGrid): RopeTables {
    const key = grid.join('x');
    let tables = this.ropeCache.get(key);
    if (tables === undefined) {
      const c = this.config;
      tables = ropeTables(grid, c.dim / c.numHeads, c.numHeads);
      tf.keep(tables.cos);
      tf.keep(tables.sin);
      tf.keep(tables.swap);
      this.ropeCache.set(key, tables);
    }
    return tables;
  }

  /**
   * Validates the inputs of a forward pass; returns the patch grid, the timesteps as numbers (one per
   * batch element) and a thunk building the model input.
   */
  protected checkInputs(
    x: LatentVideo,
    timesteps: TimestepsLike,
    cond: Conditioning,
    options: TimestepOptions = {},
  ): { grid: PatchGrid; timesteps: Timestep[]; input: () => tf.Tensor5D } {
    const c = this.config;
    if (!(x instanceof tf.Tensor) || x.rank !== 5) {
      throw new InvalidArgumentError(
        `x: expected a latent video [B, F, H, W, C] (rank 5), got ${x instanceof tf.Tensor ? formatShape(x.shape) : typeof x}`,
      );
    }
    const [b, f, h, w, ch] = x.shape;
    const [pt, ph, pw] = c.patchSize;
    if (f % pt !== 0 || h % ph !== 0 || w % pw !== 0) {
      throw new InvalidArgumentError(
        `x: frames, height and width must be multiples of the patch size [${c.patchSize.join(', ')}], got ${formatShape(x.shape)}`,
      );
    }
    const ts = validateTimesteps('timesteps', timesteps, b, options);
    if (cond === undefined || !(cond.text instanceof tf.Tensor)) {
      throw new InvalidArgumentError('conditioning.text: expected a tensor [B, L, Dtext]');
    }
    const bind = new Map<string, number>([['B', b]]);
    assertShape('conditioning.text', cond.text, ['B', 'L', c.textDim], bind);
    const l = cond.text.shape[1];
    if (l > c.textLen) {
      throw new InvalidArgumentError(`conditioning.text: ${l} tokens exceed textLen ${c.textLen}`);
    }
    if (cond.textMask !== undefined) assertShape('conditioning.textMask', cond.textMask, ['B', 'L'], bind);
    const latent = cond.image?.latent;
    let channels = ch;
    if (latent !== undefined) {
      assertShape('conditioning.image.latent', latent, [b, f, h, w, null]);
      channels += latent.shape[4];
    }
    if (channels !== c.inDim) {
      throw new InvalidArgumentError(
        latent === undefined
          ? `x: expected ${c.inDim} channels (inDim), got ${formatShape(x.shape)}` +
              (c.modelType === 'i2v' ? `; an i2v model also needs conditioning.image.latent` : '')
          : `x and conditioning.image.latent: channels ${ch} + ${latent.shape[4]} must equal inDim ${c.inDim}`,
      );
    }
    const tokens = cond.image?.tokens;
    if (c.modelType === 'i2v') {
      if (tokens === undefined) {
        throw new InvalidArgumentError(
          `conditioning.image.tokens: an i2v model needs CLIP image tokens [B, L, ${c.imageDim}]`,
        );
      }
      assertShape('conditioning.image.tokens', tokens, [b, null, c.imageDim]);
    } else if (tokens !== undefined) {
      throw new InvalidArgumentError(
        'conditioning.image.tokens: a t2v model has no image embedding (img_emb)',
      );
    }
    if (finiteCheckActive(this.checkFinite)) {
      // All of a call's tensors in one device read (the reward models' check; see assertFiniteTensors).
      assertFiniteTensors([
        ['x', x],
        ['conditioning.text', cond.text],
        ['conditioning.textMask', cond.textMask],
        ['conditioning.image.latent', latent],
        ['conditioning.image.tokens', tokens],
      ]);
    }
    const grid: PatchGrid = [f / pt, h / ph, w / pw];
    const input = () => (latent === undefined ? x : (tf.concat([x, latent], 4) as tf.Tensor5D));
    return { grid, timesteps: ts, input };
  }
}

/**
 * The Wan2.1 DiT (WanModel): text-to-video or image-to-video. Implements prfl's VelocityModel (the
 * generator PRFL trains) and FeatureBackbone (what PAVRM reads); `truncate(k)` makes the PAVRM backbone.
 *
 * Inputs: x_sigma [B, F, H, W, outDim] (channels last), one timestep value (sigma * 1000) per batch
 * element, text embeddings [B, L <= textLen, textDim] (zero-padded to textLen as Wan does; an optional
 * textMask removes padding from cross-attention, which Wan's reference does not), and for i2v the
 * first-frame condition latent [B, F, H, W, inDim - outDim] and CLIP tokens [B, Limg, imageDim].
 */
export class WanDiT extends WanDiTBase implements VelocityModel {
  readonly latentChannels: number;
  readonly hasHead = true;

  constructor(config: WanDiTConfig | WanDiTPresetName | Partial<WanDiTConfig>, options: WanDiTOptions = {}) {
    const c = wanDiTConfig(config, options.base);
    super(c, c.numLayers, wanDiTParamSpecs(c), options);
    this.latentChannels = c.outDim;
  }

  /**
   * A model from a PyTorch state dict in Wan's layout (e.g. loadSafetensors of a Wan checkpoint). Keys
   * and shapes are checked against the config before anything is converted; missing or unexpected
   * keys are listed in the error. The caller keeps ownership of `state`.
   */
  static fromStateDict(
    config: WanDiTConfig | WanDiTPresetName | Partial<WanDiTConfig>,
    state: StateDict,
    options: Omit<WanDiTOptions, 'weights' | 'seed'> = {},
  ): WanDiT {
    const c = wanDiTConfig(config, options.base);
    const weights = weightsFromStateDict(wanDiTParamSpecs(c), state);
    try {
      return new WanDiT(c, { ...options, weights });
    } finally {
      tf.dispose([...weights.values()]);
    }
  }

  /** Head and unpatchify: tokens [B, N, D] -> velocity [B, F, H, W, outDim]. */
  runHead(tokens: TokenSequence, context: WanDiTContext): LatentVideo {
    this.checkLive();
    return wanHead(this.lookup, this.config, tokens, context);
  }

  /**
   * The flow-matching velocity v = eps - x0 for x_sigma [B, F, H, W, outDim]. Differentiable in x and the
   * variables.
   *
   * `timesteps`: one timestep (sigma * 1000, in [0, 1000]) per batch element as an array, a typed array
   * or a 1-D tensor, or one number for all. A batch whose values are all below 1 (not all 0) is refused
   * as sigmas unless `options.allowSmallTimesteps`.
   *
   * @throws InvalidArgumentError naming the argument for a latent of the wrong rank, size or channels,
   *   timesteps of the wrong count, range or form, conditioning that does not match, or (with
   *   `checkFinite`, the default) NaN/Inf in the latent or the conditioning.
   */
  predictVelocity(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    options: TimestepOptions = {},
  ): LatentVideo {
    return tf.tidy(() => {
      const { tokens, context } = this.embed(x, timesteps, conditioning, options);
      let h = tokens;
      for (let i = 0; i < this.numBlocks; i++) h = this.runBlock(i, h, context);
      return this.runHead(h, context);
    });
  }
}

/**
 * Embeddings and the first k blocks of a Wan DiT, no head: the PAVRM backbone (docs/method.md §4). Made by
 * `WanDiT.truncate(k)`; holds its own copies of the weights; embeddings frozen, blocks trainable.
 */
export class WanDiTBackbone extends WanDiTBase {
  readonly hasHead = false;
  /** @internal use `WanDiT.truncate`. */
  constructor(
    config: WanDiTConfig,
    k: number,
    source: ReadonlyMap<string, tf.Variable>,
    options: Pick<WanDiTOptions, 'name' | 'checkFinite'> = {},
  ) {
    const specs = wanDiTBackboneParamSpecs(config, k);
    const weights = new Map<string, tf.Tensor>();
    for (const s of specs) weights.set(s.name, source.get(s.name) as tf.Tensor);
    super(config, k, specs, { ...options, weights });
    for (const s of specs) (this.vars.get(s.name) as tf.Variable).trainable = s.group === 'block';
  }
}

/** The parameters a k-block backbone holds: the embeddings and blocks 0..k-1 (no head). */
export function wanDiTBackboneParamSpecs(config: WanDiTConfig, k: number): ParamSpec[] {
  return wanDiTParamSpecs(config).filter(
    (s) => s.group === 'embedding' || (s.group === 'block' && (s.block as number) < k),
  );
}
