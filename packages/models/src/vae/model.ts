/**
 * Wan2.1's causal video VAE (wan/modules/vae.py) as a prfl Trainable, channels last.
 *
 * Videos are [B, F, H, W, 3] in [-1, 1] with F = 1 + 4k frames (Wan: the first frame is encoded alone,
 * then chunks of 4) and H, W multiples of 8; latents are [B, 1 + k, H / 8, W / 8, zDim]. `encode` and
 * `decode` speak *normalised* latents, (mu - mean) / std per channel, which is what the DiT reads
 * (Wan's WanVAE wrapper); `encodeMoments` / `decodeRaw` are the network itself, for training.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertFiniteTensor,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
  type Trainable,
  type FiniteCheck,
  finiteCheckActive,
} from '@prfl/tensor';
import {
  latentShape,
  WAN_VAE_PRESETS,
  type WanVAEConfig,
  type WanVAEPresetName,
  wanVAEConfig,
} from './config.js';
import {
  causalConv3d,
  channelRmsNorm,
  pointwiseConv,
  runModule,
  silu,
  splitChannels,
  type VAEWeights,
} from './layers.js';
import { type VAELayout, type VAEParamSpec, vaeLayout, wanVAEParamSpecs } from './params.js';

export interface WanVAEOptions {
  /** Seed of the initialisation (each parameter from its own named stream). Default 0. */
  seed?: number | string;
  /** Prefix of the tfjs variable names (`<name>/<wan key>`); default a fresh `wan_vae_<n>`. */
  name?: string;
  /** Initial `variable.trainable` of every parameter (default true). */
  trainable?: boolean;
  /** Initial values in tfjs layout by Wan key (exactly the config's parameters); copied. */
  weights?: ReadonlyMap<string, tf.Tensor>;
  /**
   * What a partial config's missing fields are taken from: a preset name or a full config. Default
   * 'wan2.1' (Wan's own defaults; the same rule for every model and loader, docs/models.md).
   */
  base?: WanVAEPresetName | WanVAEConfig;
  /**
   * Refuse NaN/Inf in the video given to `encode`/`encodeMoments` and the latent given to
   * `decode`/`decodeRaw` (default `'auto'`: on cpu, wasm and webgl, not webgpu; see `FiniteCheck`), as the DiT and the reward models do. One small device read per
   * call, next to a whole encoder or decoder pass.
   */
  checkFinite?: FiniteCheck;
}

/** A Gaussian posterior per latent element, unnormalised: what the encoder network outputs. */
export interface LatentMoments {
  /** mu [B, F', H', W', C]. */
  mean: LatentVideo;
  /** log sigma^2 [B, F', H', W', C] (not clamped). */
  logvar: LatentVideo;
}

export interface EncodeOptions {
  /**
   * Draw z = mu + sigma eps with eps from this generator (JS noise, identical on every backend);
   * default: the posterior mean (Wan's `encode`). Wan clamps log sigma^2 to [-30, 20] when sampling.
   */
  generator?: Generator;
  /** Return (z - mean) / std, the DiT's latents (default true). */
  normalize?: boolean;
}

export interface DecodeOptions {
  /** The latent is normalised (what `encode` and samplers produce); default true. */
  normalized?: boolean;
  /** Clamp the frames to [-1, 1] as Wan does (default true). */
  clamp?: boolean;
}

let instances = 0;

function initialValue(spec: VAEParamSpec, gen: Generator): tf.Tensor {
  const shape = [...spec.shape];
  const n = shape.reduce((a, b) => a * b, 1);
  switch (spec.init.kind) {
    case 'ones':
      return tf.ones(shape);
    case 'zeros':
      return tf.zeros(shape);
    case 'uniform':
      return tf.tensor(gen.uniformArray(n, -spec.init.bound, spec.init.bound), shape, 'float32');
  }
}

/**
 * The Wan2.1 video VAE. The architecture is always named: a preset ('wan2.1', 'tiny', 'test') or a
 * partial config completed from `options.base` (default 'wan2.1').
 */
export class WanVAE implements Trainable {
  /** Prefix of this model's tfjs variable names. */
  readonly name: string;
  /** Whether encode/decode refuse NaN/Inf inputs (`WanVAEOptions.checkFinite`). */
  readonly checkFinite: FiniteCheck;
  private cfg: WanVAEConfig;
  private readonly layout: VAELayout;
  private readonly specs: readonly VAEParamSpec[];
  private readonly vars = new Map<string, tf.Variable>();
  private readonly lookup: VAEWeights;
  private stats: { mean: tf.Tensor1D; std: tf.Tensor1D } | undefined;
  private disposed = false;

  constructor(config: WanVAEPresetName | Partial<WanVAEConfig> | WanVAEConfig, options: WanVAEOptions = {}) {
    if (config === undefined) {
      // No silent default: `new WanVAE()` once meant 'tiny' while `new WanVAE({})` meant 'wan2.1'.
      throw new InvalidArgumentError(
        `WanVAE: config is required: a preset name (${Object.keys(WAN_VAE_PRESETS).join(', ')}) or a partial config completed from options.base (default 'wan2.1')`,
      );
    }
    this.cfg = wanVAEConfig(config, options.base);
    this.name = options.name ?? `wan_vae_${++instances}`;
    this.checkFinite = options.checkFinite ?? 'auto';
    this.layout = vaeLayout(this.cfg);
    this.specs = wanVAEParamSpecs(this.cfg);
    if (options.weights !== undefined) checkVAEWeights(this.specs, options.weights, `${this.name} weights`);
    const gen = new Generator(options.seed ?? 0);
    const trainable = options.trainable ?? true;
    try {
      for (const spec of this.specs) {
        const value = options.weights?.get(spec.name);
        const v = tf.tidy(() =>
          tf.variable(
            value !== undefined ? tf.cast(value, 'float32') : initialValue(spec, gen.derive(spec.name)),
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

  /** The validated config (latent statistics included). */
  get config(): WanVAEConfig {
    return this.cfg;
  }

  /** Latent channels C. */
  get latentChannels(): number {
    return this.cfg.zDim;
  }

  /** Every parameter under its Wan key (tfjs layout). */
  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  /** The parameter table (Wan keys, both layouts, init). */
  paramSpecs(): readonly VAEParamSpec[] {
    return this.specs;
  }

  /** Number of parameters. */
  parameterCount(): number {
    return this.specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  }

  /** The variables whose `trainable` flag is set. */
  trainableVariables(): tf.Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  /**
   * The latent shape of one video of `frames` x `height` x `width`: [F', H', W', C], channels last, no
   * batch axis (see `latentShape`). Throws for sizes the VAE cannot encode.
   */
  latentShape(frames: number, height: number, width: number): [number, number, number, number] {
    return latentShape(this.cfg, frames, height, width);
  }

  /** Replaces the per-channel latent statistics (e.g. measured by `measureLatentStats` after training). */
  setLatentStats(mean: readonly number[], std: readonly number[]): void {
    this.cfg = wanVAEConfig({ ...this.cfg, latentMean: [...mean], latentStd: [...std] }, this.cfg);
    if (this.stats !== undefined) tf.dispose([this.stats.mean, this.stats.std]);
    this.stats = undefined;
  }

  /** mu, log sigma^2 of a video [B, F, H, W, 3] (unnormalised). Differentiable. */
  encodeMoments(video: tf.Tensor5D): LatentMoments {
    this.checkLive();
    this.checkVideo(video);
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('video', video);
    const [mean, logvar] = tf.tidy(() => {
      const w = this.lookup;
      const enc = this.layout.encoder;
      let x = causalConv3d(video, w('encoder.conv1.weight'), w('encoder.conv1.bias'), [1, 1, 1]);
      for (const m of enc.blocks) x = runModule(w, m, x);
      for (const m of enc.middle) x = runModule(w, m, x);
      x = silu(channelRmsNorm(x, w('encoder.head.0.gamma'))) as tf.Tensor5D;
      x = causalConv3d(x, w('encoder.head.2.weight'), w('encoder.head.2.bias'), [1, 1, 1]);
      x = pointwiseConv(x, w('conv1.weight'), w('conv1.bias'));
      return splitChannels(x, 2) as [LatentVideo, LatentVideo];
    });
    return { mean, logvar };
  }

  /**
   * A video [B, F, H, W, 3] in [-1, 1] -> latents [B, 1 + (F - 1) / 4, H / 8, W / 8, C]: the posterior
   * mean, or a sample with `options.generator`; normalised unless `normalize: false`.
   *
   * @throws InvalidArgumentError for a tensor that is not [B, F, H, W, 3], F not 1 + 4k (16 frames is
   *   refused; 17 is fine), or H, W not multiples of 8.
   */
  encode(video: tf.Tensor5D, options: EncodeOptions = {}): LatentVideo {
    const { mean, logvar } = this.encodeMoments(video);
    const noise = options.generator?.normal<tf.Rank.R5>(mean.shape);
    try {
      return tf.tidy(() => {
        let z: tf.Tensor5D = mean;
        if (noise !== undefined)
          z = tf.add(mean, tf.mul(tf.exp(tf.mul(tf.clipByValue(logvar, -30, 20), 0.5)), noise));
        if (options.normalize !== false) return this.normalizeLatent(z);
        return z === mean ? tf.clone(mean) : z;
      });
    } finally {
      tf.dispose(noise === undefined ? [mean, logvar] : [mean, logvar, noise]);
    }
  }

  /** The decoder network on an unnormalised latent [B, F', H', W', C] -> [B, 1 + 4 (F' - 1), 8 H', 8 W', 3], unclamped. */
  decodeRaw(latent: LatentVideo): tf.Tensor5D {
    this.checkLive();
    this.checkLatent(latent);
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('latent', latent);
    return this.decoderNetwork(latent);
  }

  /** The decoder itself, on a checked latent. */
  private decoderNetwork(latent: LatentVideo): tf.Tensor5D {
    return tf.tidy(() => {
      const w = this.lookup;
      const dec = this.layout.decoder;
      let x = pointwiseConv(latent, w('conv2.weight'), w('conv2.bias'));
      x = causalConv3d(x, w('decoder.conv1.weight'), w('decoder.conv1.bias'), [1, 1, 1]);
      for (const m of dec.middle) x = runModule(w, m, x);
      for (const m of dec.blocks) x = runModule(w, m, x);
      x = silu(channelRmsNorm(x, w('decoder.head.0.gamma'))) as tf.Tensor5D;
      return causalConv3d(x, w('decoder.head.2.weight'), w('decoder.head.2.bias'), [1, 1, 1]);
    });
  }

  /** Latents (normalised by default) -> frames [B, F, H, W, 3], clamped to [-1, 1] by default. */
  decode(latent: LatentVideo, options: DecodeOptions = {}): tf.Tensor5D {
    this.checkLive();
    this.checkLatent(latent);
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('latent', latent);
    return tf.tidy(() => {
      const z = options.normalized === false ? latent : this.denormalizeLatent(latent);
      const frames = this.decoderNetwork(z);
      return options.clamp === false ? frames : tf.clipByValue(frames, -1, 1);
    });
  }

  /** (z - mean) / std per channel. */
  normalizeLatent(z: LatentVideo): LatentVideo {
    const s = this.latentStats();
    return tf.tidy(() => tf.div(tf.sub(z, s.mean), s.std));
  }

  /** z * std + mean per channel. */
  denormalizeLatent(z: LatentVideo): LatentVideo {
    const s = this.latentStats();
    return tf.tidy(() => tf.add(tf.mul(z, s.std), s.mean));
  }

  /** The weights as a PyTorch state dict (Wan's keys and layouts). New tensors; the caller disposes them. */
  stateDict(): Map<string, tf.Tensor> {
    this.checkLive();
    const out = new Map<string, tf.Tensor>();
    for (const s of this.specs) out.set(s.name, vaeParamToTorch(s, this.vars.get(s.name) as tf.Tensor));
    return out;
  }

  /**
   * A VAE from a PyTorch state dict in Wan's key names and layouts (e.g. Wan2.1_VAE.pth saved as
   * safetensors). Keys and shapes are checked first; the caller keeps ownership of `state`.
   */
  static fromStateDict(
    config: WanVAEPresetName | Partial<WanVAEConfig> | WanVAEConfig,
    state: ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>,
    options: Omit<WanVAEOptions, 'weights' | 'seed'> = {},
  ): WanVAE {
    const c = wanVAEConfig(config, options.base);
    const specs = wanVAEParamSpecs(c);
    const map =
      state instanceof Map ? (state as ReadonlyMap<string, tf.Tensor>) : new Map(Object.entries(state));
    checkVAEStateDict(specs, new Map([...map].map(([k, v]) => [k, v.shape])), 'WanVAE state dict');
    const weights = new Map<string, tf.Tensor>();
    try {
      for (const s of specs) weights.set(s.name, vaeParamFromTorch(s, map.get(s.name) as tf.Tensor));
      const { base: _base, ...rest } = options;
      return new WanVAE(c, { ...rest, weights });
    } finally {
      tf.dispose([...weights.values()]);
    }
  }

  /** Frees the variables. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    if (this.stats !== undefined) tf.dispose([this.stats.mean, this.stats.std]);
    this.stats = undefined;
    this.disposed = true;
  }

  private latentStats(): { mean: tf.Tensor1D; std: tf.Tensor1D } {
    if (this.stats === undefined) {
      this.stats = {
        mean: tf.keep(tf.tensor1d([...this.cfg.latentMean])),
        std: tf.keep(tf.tensor1d([...this.cfg.latentStd])),
      };
    }
    return this.stats;
  }

  private checkLive(): void {
    if (this.disposed) throw new InvalidArgumentError(`${this.name}: the VAE has been disposed`);
  }

  private checkVideo(video: tf.Tensor): void {
    if (!(video instanceof tf.Tensor) || video.rank !== 5 || video.shape[4] !== 3) {
      throw new InvalidArgumentError(
        `video: expected [B, F, H, W, 3] (channels last, RGB in [-1, 1]), got ${video instanceof tf.Tensor ? formatShape(video.shape) : typeof video}`,
      );
    }
    const [, f, h, w] = video.shape as number[];
    latentShape(this.cfg, f as number, h as number, w as number);
  }

  private checkLatent(latent: tf.Tensor): void {
    if (!(latent instanceof tf.Tensor) || latent.rank !== 5 || latent.shape[4] !== this.cfg.zDim) {
      throw new InvalidArgumentError(
        `latent: expected [B, F, H, W, ${this.cfg.zDim}] (channels last), got ${latent instanceof tf.Tensor ? formatShape(latent.shape) : typeof latent}`,
      );
    }
  }
}

/** One value, Wan's PyTorch layout -> tfjs layout (float32). The caller disposes input and result. */
export function vaeParamFromTorch(spec: VAEParamSpec, value: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const v = tf.cast(value, 'float32');
    switch (spec.layout) {
      case 'conv3d':
        return tf.transpose(v, [2, 3, 4, 1, 0]);
      case 'conv2d':
        return tf.expandDims(tf.transpose(v, [2, 3, 1, 0]), 0);
      case 'conv1x1':
        return tf.transpose(tf.reshape(v, [spec.torchShape[0] as number, spec.torchShape[1] as number]));
      case 'gamma':
        return tf.reshape(v, [spec.shape[0] as number]);
      case 'plain':
        return tf.clone(v);
    }
  });
}

/** One value, tfjs layout -> Wan's PyTorch layout. The caller disposes input and result. */
export function vaeParamToTorch(spec: VAEParamSpec, value: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    switch (spec.layout) {
      case 'conv3d':
        return tf.transpose(value, [4, 3, 0, 1, 2]);
      case 'conv2d':
        return tf.transpose(tf.squeeze(value, [0]), [3, 2, 0, 1]);
      case 'conv1x1':
        return tf.reshape(tf.transpose(value), [...spec.torchShape]);
      case 'gamma':
        return tf.reshape(value, [...spec.torchShape]);
      case 'plain':
        return tf.clone(value);
    }
  });
}

function describeKeys(missing: string[], unexpected: string[]): string {
  const parts: string[] = [];
  const list = (names: string[]) =>
    names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');
  if (missing.length > 0) parts.push(`missing keys (${missing.length}): ${list(missing)}`);
  if (unexpected.length > 0) parts.push(`unexpected keys (${unexpected.length}): ${list(unexpected)}`);
  return parts.join('; ');
}

/**
 * Checks checkpoint keys and PyTorch shapes against the parameter table.
 * @throws InvalidArgumentError listing missing and unexpected keys, or naming a key whose shape differs.
 */
export function checkVAEStateDict(
  specs: readonly VAEParamSpec[],
  shapes: ReadonlyMap<string, readonly number[]>,
  what: string,
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !shapes.has(s.name)).map((s) => s.name);
  const unexpected = [...shapes.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    throw new InvalidArgumentError(
      `${what}: the checkpoint does not match the config: ${describeKeys(missing, unexpected)}`,
    );
  }
  for (const s of specs) {
    const got = shapes.get(s.name) as readonly number[];
    if (got.length !== s.torchShape.length || got.some((d, i) => d !== s.torchShape[i])) {
      throw new InvalidArgumentError(
        `${what}: ${s.name} has shape ${formatShape(got)} in the checkpoint, expected ${formatShape(s.torchShape)}`,
      );
    }
  }
}

function checkVAEWeights(
  specs: readonly VAEParamSpec[],
  weights: ReadonlyMap<string, tf.Tensor>,
  what: string,
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !weights.has(s.name)).map((s) => s.name);
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || unexpected.length > 0)
    throw new InvalidArgumentError(`${what}: ${describeKeys(missing, unexpected)}`);
  for (const s of specs) {
    const t = weights.get(s.name) as tf.Tensor;
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new InvalidArgumentError(
        `${what}: ${s.name} has shape ${formatShape(t.shape)}, expected ${formatShape(s.shape)}`,
      );
    }
  }
}
