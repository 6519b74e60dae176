/**
 * A pixel-space video reward for the RGB ReFL baseline (docs/method.md §6): a small 3-D convolutional classifier
 * over decoded frames [B, F, H, W, 3] (channels last, values in [-1, 1] as a VAE decodes them) behind the
 * same LatentRewardModel contract as PAVRM: `score(frames, timesteps, conditioning)` -> logits [B]. It
 * reads clean pixels, so the timesteps and the conditioning are accepted and ignored; train it with the
 * same BCE step as PAVRM and a `{ kind: 'fixed', sigma: 0 }` sampler (no noise).
 *
 * Convolutions are 3-D with TensorFlow's 'same' padding, computed by @prfl/tensor's conv3d after explicit
 * zero padding (`sameConv3d`), never by differentiating tf.conv3d: tfjs-backend-wasm 4.22's kernels for
 * tf.conv3d's gradient are wrong. Conv3DBackpropFilterV2 skips output positions of strided convolutions
 * (its loop bounds round the wrong way); Conv3DBackpropInputV2's time loop bound leaves out the frame
 * offset, so it indexes the filter outside its buffer and sums whatever the wasm heap holds there. That
 * input gradient flows back into every earlier layer's weights (and into the decoder in RGB ReFL): the
 * updates were wrong, depended on what the process did before, and turned NaN when that memory held NaN
 * (training stopped on a NaN gradient, e.g. at the first step of a second epoch, in some runs only).
 * The conv3d of @prfl/tensor is XNNPACK's conv2d per time tap on wasm, with its own gradient, and
 * tf.conv3d elsewhere: the same function, right everywhere. Parameters use PyTorch-style names
 * (`conv1.weight`, `fc1.weight`), held in tfjs layout (Conv3d [t, h, w, in, out], Linear [in, out]).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  conv3d,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentRewardModel,
  type LatentVideo,
  linear,
  PrflError,
  type TimestepOptions,
  type TimestepsLike,
  validateTimesteps,
  type FiniteCheck,
  finiteCheckActive,
} from '@prfl/tensor';
import { assertFiniteTensor, assertLatentVideo } from '../validate.js';

export interface PixelVideoRewardConfig {
  /** Channels of the input frames. Default 3 (RGB). */
  inChannels: number;
  /** Output channels of each conv layer. Default [16, 32, 32]. */
  channels: readonly number[];
  /** [t, h, w] stride of each conv layer (kernel 3 x 3 x 3, 'same' padding). Default [[1,2,2],[1,2,2],[2,2,2]]. */
  strides: ReadonlyArray<readonly [number, number, number]>;
  /** Hidden width of the MLP after global average pooling. Default 64. */
  hidden: number;
}

export const PIXEL_REWARD_DEFAULTS: PixelVideoRewardConfig = Object.freeze({
  inChannels: 3,
  channels: Object.freeze([16, 32, 32]),
  strides: Object.freeze([
    [1, 2, 2],
    [1, 2, 2],
    [2, 2, 2],
  ] as const),
  hidden: 64,
});

export interface PixelVideoRewardOptions {
  seed?: number | string;
  /** Prefix of the tfjs variable names. Default a fresh `pixel_reward_<n>`. */
  name?: string;
  /** Initial values in tfjs layout by name (what loaders pass). Must hold exactly the parameters. */
  weights?: ReadonlyMap<string, tf.Tensor>;
  /** Check frames for NaN/Inf (one small read per call). Default `'auto'` (every backend but webgpu; see `FiniteCheck`). */
  checkFinite?: FiniteCheck;
}

let instances = 0;

/** TensorFlow's 'same' padding of one axis of `size` for a kernel and stride: [before, after]. */
function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * tf.conv3d(x, w, strides, 'same') for x [B, T, H, W, Cin] and w [kt, kh, kw, Cin, Cout]: zero padding of
 * time, height and width (through rank-3 and rank-4 pads, which are fast on wasm), then @prfl/tensor's
 * 'valid' conv3d, whose gradients are right on every backend (see the file comment).
 */
function sameConv3d(x: tf.Tensor5D, w: tf.Tensor5D, strides: readonly [number, number, number]): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, t, h, wd, c] = x.shape;
    const [kt, kh, kw] = w.shape;
    const [t0, t1] = samePadding(t, kt, strides[0]);
    const [h0, h1] = samePadding(h, kh, strides[1]);
    const [w0, w1] = samePadding(wd, kw, strides[2]);
    let y: tf.Tensor = x;
    if (t0 + t1 > 0) {
      y = tf.pad(tf.reshape(y, [b, t, h * wd * c]), [
        [0, 0],
        [t0, t1],
        [0, 0],
      ]);
    }
    const frames = t + t0 + t1;
    if (h0 + h1 + w0 + w1 > 0) {
      y = tf.pad(tf.reshape(y, [b * frames, h, wd, c]), [
        [0, 0],
        [h0, h1],
        [w0, w1],
        [0, 0],
      ]);
    }
    const padded = tf.reshape(y, [b, frames, h + h0 + h1, wd + w0 + w1, c]) as tf.Tensor5D;
    return conv3d(padded, w, strides);
  });
}

interface Spec {
  name: string;
  shape: number[];
  fanIn: number;
  bias: boolean;
}

function specsFor(c: PixelVideoRewardConfig): Spec[] {
  const specs: Spec[] = [];
  let cin = c.inChannels;
  c.channels.forEach((cout, i) => {
    specs.push({ name: `conv${i + 1}.weight`, shape: [3, 3, 3, cin, cout], fanIn: 27 * cin, bias: false });
    specs.push({ name: `conv${i + 1}.bias`, shape: [cout], fanIn: 27 * cin, bias: true });
    cin = cout;
  });
  specs.push({ name: 'fc1.weight', shape: [cin, c.hidden], fanIn: cin, bias: false });
  specs.push({ name: 'fc1.bias', shape: [c.hidden], fanIn: cin, bias: true });
  specs.push({ name: 'fc2.weight', shape: [c.hidden, 1], fanIn: c.hidden, bias: false });
  specs.push({ name: 'fc2.bias', shape: [1], fanIn: c.hidden, bias: true });
  return specs;
}

function resolveConfig(config: Partial<PixelVideoRewardConfig>): PixelVideoRewardConfig {
  const c: PixelVideoRewardConfig = { ...PIXEL_REWARD_DEFAULTS, ...config };
  const positive = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (
    !positive(c.inChannels) ||
    !positive(c.hidden) ||
    !Array.isArray(c.channels) ||
    c.channels.length === 0 ||
    !c.channels.every(positive)
  ) {
    throw new InvalidArgumentError(
      `PixelVideoReward: expected positive integer inChannels, hidden and channels, got ${JSON.stringify(config)}`,
    );
  }
  if (
    !Array.isArray(c.strides) ||
    c.strides.length !== c.channels.length ||
    !c.strides.every((s) => Array.isArray(s) && s.length === 3 && s.every(positive))
  ) {
    throw new InvalidArgumentError(
      `PixelVideoReward: expected one [t, h, w] stride per conv layer (${c.channels.length}), got ${JSON.stringify(c.strides)}`,
    );
  }
  return {
    ...c,
    channels: [...c.channels],
    strides: c.strides.map((s) => [...s] as [number, number, number]),
  };
}

/** The pixel-space baseline reward; see the file comment. */
export class PixelVideoReward implements LatentRewardModel {
  readonly config: Readonly<PixelVideoRewardConfig>;
  readonly name: string;
  readonly checkFinite: FiniteCheck;
  readonly #vars = new Map<string, tf.Variable>();

  constructor(config: Partial<PixelVideoRewardConfig> = {}, options: PixelVideoRewardOptions = {}) {
    this.config = Object.freeze(resolveConfig(config));
    this.name = options.name ?? `pixel_reward_${++instances}`;
    this.checkFinite = options.checkFinite ?? 'auto';
    const specs = specsFor(this.config);
    const w = options.weights;
    if (w !== undefined) {
      const expected = new Set(specs.map((s) => s.name));
      const missing = specs.filter((s) => !w.has(s.name)).map((s) => s.name);
      const unexpected = [...w.keys()].filter((k) => !expected.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new InvalidArgumentError(
          `PixelVideoReward weights: missing ${missing.join(', ') || 'none'}; unexpected ${unexpected.join(', ') || 'none'}`,
        );
      }
      for (const s of specs) {
        const t = w.get(s.name) as tf.Tensor;
        if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
          throw new InvalidArgumentError(
            `PixelVideoReward weights: ${s.name} has shape ${formatShape(t.shape)}, expected ${formatShape(s.shape)}`,
          );
        }
      }
    }
    const gen = new Generator(options.seed ?? 0);
    for (const s of specs) {
      const given = w?.get(s.name);
      // PyTorch's Conv3d/Linear default init: U(±1/sqrt(fan_in)) for weights and biases.
      const bound = 1 / Math.sqrt(s.fanIn);
      const n = s.shape.reduce((a, b) => a * b, 1);
      const v = tf.tidy(() =>
        tf.variable(
          given !== undefined
            ? tf.cast(given, 'float32')
            : tf.tensor(gen.derive(s.name).uniformArray(n, -bound, bound), s.shape, 'float32'),
          true,
          `${this.name}/${s.name}`,
        ),
      );
      this.#vars.set(s.name, v);
    }
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.#vars;
  }

  /**
   * Logits [B] for frames [B, F, H, W, inChannels]. Differentiable in the frames (the RGB ReFL gradient
   * path) and the variables. `timesteps` (one per frame stack or one for all, checked as every model
   * checks them) and `conditioning` are ignored.
   */
  score(
    frames: LatentVideo,
    timesteps: TimestepsLike,
    _conditioning?: Conditioning,
    options: TimestepOptions = {},
  ): tf.Tensor1D {
    assertLatentVideo('frames', frames, this.config.inChannels);
    validateTimesteps('timesteps', timesteps, frames.shape[0], options);
    if (finiteCheckActive(this.checkFinite)) assertFiniteTensor('frames', frames);
    return tf.tidy(() => {
      let h: tf.Tensor5D = frames;
      this.config.channels.forEach((_, i) => {
        const w = this.#var(`conv${i + 1}.weight`) as tf.Tensor5D;
        const stride = this.config.strides[i] as [number, number, number];
        h = tf.relu(tf.add(sameConv3d(h, w, stride), this.#var(`conv${i + 1}.bias`))) as tf.Tensor5D;
      });
      const pooled = tf.mean(h, [1, 2, 3]);
      const hidden = tf.relu(
        linear(pooled, this.#var('fc1.weight') as tf.Tensor2D, this.#var('fc1.bias') as tf.Tensor1D),
      );
      return tf.reshape(
        linear(hidden, this.#var('fc2.weight') as tf.Tensor2D, this.#var('fc2.bias') as tf.Tensor1D),
        [-1],
      ) as tf.Tensor1D;
    });
  }

  /** sigmoid(score). */
  probability(
    frames: LatentVideo,
    timesteps: TimestepsLike,
    conditioning?: Conditioning,
    options: TimestepOptions = {},
  ): tf.Tensor1D {
    return tf.tidy(() => tf.sigmoid(this.score(frames, timesteps, conditioning, options)));
  }

  dispose(): void {
    for (const v of this.#vars.values()) v.dispose();
    this.#vars.clear();
  }

  #var(name: string): tf.Variable {
    const v = this.#vars.get(name);
    if (v === undefined) throw new PrflError(`${this.name}: no parameter ${name} (disposed?)`);
    return v;
  }
}
