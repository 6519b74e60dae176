/**
 * A small video transformer implementing FeatureBackbone, shaped like a Wan2.1 DiT in miniature: a
 * Conv3d patch embedding, a fixed 3-D sinusoidal position code, time and text embeddings, and blocks of
 * time-modulated self-attention and FFN. It stands in for a real generator's first blocks in tests,
 * examples and benchmarks of @prfl/reward, so the package runs with nothing but @prfl/tensor and tfjs.
 * With a real generator, use its truncation instead (e.g. @prfl/models' `WanDiT.truncate(8)`).
 *
 * Keys follow Wan's naming (`patch_embedding`, `time_embedding.0`, `blocks.0.self_attn.q`, ...), weights
 * in tfjs layout (Linear [in, out], Conv3d [t, h, w, in, out]). As in PAVRM's backbone (docs/method.md §4), the
 * embeddings are frozen (`trainable = false`) and the blocks train.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  conv3d,
  type Conditioning,
  type FeatureBackbone,
  formatShape,
  Generator,
  InvalidArgumentError,
  type LatentVideo,
  linear,
  type TimestepOptions,
  type TimestepsLike,
  type TokenSequence,
  validateTimesteps,
} from '@prfl/tensor';

export interface TinyVideoBackboneConfig {
  /** Channels of the latents it reads. */
  latentChannels: number;
  /** [t, h, w] patch of the Conv3d patch embedding. */
  patchSize: readonly [number, number, number];
  /** Feature width D. */
  dim: number;
  numBlocks: number;
  numHeads: number;
  ffnDim: number;
  /** Width of the text embeddings it reads. */
  textDim: number;
  /** Width of the sinusoidal timestep code. */
  freqDim: number;
}

/**
 * Presets: `tiny` for tests and examples (8 tokens for the default 4 x 8 x 8 motion latents; a training step
 * in tens of milliseconds), `mid` for benchmarks (Wan's [1, 2, 2] patch).
 */
export const TINY_VIDEO_BACKBONE_PRESETS = {
  tiny: {
    latentChannels: 4,
    patchSize: [2, 4, 4],
    dim: 32,
    numBlocks: 2,
    numHeads: 4,
    ffnDim: 64,
    textDim: 8,
    freqDim: 32,
  },
  mid: {
    latentChannels: 16,
    patchSize: [1, 2, 2],
    dim: 256,
    numBlocks: 4,
    numHeads: 8,
    ffnDim: 1024,
    textDim: 64,
    freqDim: 64,
  },
} as const satisfies Record<string, TinyVideoBackboneConfig>;

export interface TinyVideoBackboneOptions {
  seed?: number | string;
  /** Prefix of the tfjs variable names. Default a fresh `tiny_video_backbone_<n>`. */
  name?: string;
  /** Train the embeddings too (default false, as PAVRM freezes them). */
  trainableEmbeddings?: boolean;
}

interface Spec {
  key: string;
  shape: number[];
  init: 'zeros' | 'xavier' | 'small';
  embedding: boolean;
}

let instances = 0;

function specsFor(c: TinyVideoBackboneConfig): Spec[] {
  const d = c.dim;
  const [pt, ph, pw] = c.patchSize;
  const specs: Spec[] = [
    {
      key: 'patch_embedding.weight',
      shape: [pt, ph, pw, c.latentChannels, d],
      init: 'xavier',
      embedding: true,
    },
    { key: 'patch_embedding.bias', shape: [d], init: 'zeros', embedding: true },
    { key: 'time_embedding.0.weight', shape: [c.freqDim, d], init: 'xavier', embedding: true },
    { key: 'time_embedding.0.bias', shape: [d], init: 'zeros', embedding: true },
    { key: 'time_embedding.2.weight', shape: [d, d], init: 'xavier', embedding: true },
    { key: 'time_embedding.2.bias', shape: [d], init: 'zeros', embedding: true },
    { key: 'text_embedding.0.weight', shape: [c.textDim, d], init: 'xavier', embedding: true },
    { key: 'text_embedding.0.bias', shape: [d], init: 'zeros', embedding: true },
  ];
  for (let i = 0; i < c.numBlocks; i++) {
    const p = `blocks.${i}.`;
    specs.push({ key: `${p}modulation.weight`, shape: [d, 4 * d], init: 'small', embedding: false });
    specs.push({ key: `${p}modulation.bias`, shape: [4 * d], init: 'zeros', embedding: false });
    for (const m of ['q', 'k', 'v', 'o']) {
      specs.push({ key: `${p}self_attn.${m}.weight`, shape: [d, d], init: 'xavier', embedding: false });
      specs.push({ key: `${p}self_attn.${m}.bias`, shape: [d], init: 'zeros', embedding: false });
    }
    specs.push({ key: `${p}ffn.0.weight`, shape: [d, c.ffnDim], init: 'xavier', embedding: false });
    specs.push({ key: `${p}ffn.0.bias`, shape: [c.ffnDim], init: 'zeros', embedding: false });
    specs.push({ key: `${p}ffn.2.weight`, shape: [c.ffnDim, d], init: 'xavier', embedding: false });
    specs.push({ key: `${p}ffn.2.bias`, shape: [d], init: 'zeros', embedding: false });
  }
  return specs;
}

function initValue(spec: Spec, gen: Generator): tf.Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.init === 'zeros') return tf.zeros(spec.shape);
  const fanOut = spec.shape[spec.shape.length - 1] as number;
  const fanIn = n / fanOut;
  const bound = Math.sqrt(6 / (fanIn + fanOut)) * (spec.init === 'small' ? 0.1 : 1);
  return tf.tensor(gen.uniformArray(n, -bound, bound), spec.shape, 'float32');
}

/** LayerNorm over the last axis without affine parameters (Wan's norm1/norm2), eps 1e-6. */
function layerNorm(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-6)));
  });
}

/** GELU, tanh approximation (Wan's FFN activation). */
function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

/** Sinusoidal code of timestep values: [B] -> [B, freqDim], cos first (Wan). */
function timestepCode(timesteps: readonly number[], freqDim: number): tf.Tensor2D {
  const half = freqDim / 2;
  const out = new Float32Array(timesteps.length * freqDim);
  timesteps.forEach((t, b) => {
    for (let i = 0; i < half; i++) {
      const arg = t * 10000 ** (-i / half);
      out[b * freqDim + i] = Math.cos(arg);
      out[b * freqDim + half + i] = Math.sin(arg);
    }
  });
  return tf.tensor2d(out, [timesteps.length, freqDim]);
}

/** A fixed 3-D position code [N, D] for a grid (f, h, w): a third of the width per axis. */
function positionCode(grid: readonly [number, number, number], dim: number): Float32Array {
  const [f, h, w] = grid;
  const out = new Float32Array(f * h * w * dim);
  const per = Math.floor(dim / 6) * 2;
  const axes = [per, per, dim - 2 * per];
  let n = 0;
  for (let a = 0; a < f; a++) {
    for (let b = 0; b < h; b++) {
      for (let c = 0; c < w; c++) {
        let o = n * dim;
        [a, b, c].forEach((pos, axis) => {
          const width = axes[axis] as number;
          const half = Math.floor(width / 2);
          for (let i = 0; i < half; i++) {
            const arg = pos / 10000 ** (i / Math.max(1, half));
            out[o + i] = Math.sin(arg);
            out[o + half + i] = Math.cos(arg);
          }
          o += width;
        });
        n++;
      }
    }
  }
  return out;
}

/** A small Wan-shaped video transformer; see the file comment. */
export class TinyVideoBackbone implements FeatureBackbone {
  readonly config: Readonly<TinyVideoBackboneConfig>;
  readonly featureDim: number;
  readonly numBlocks: number;
  readonly name: string;
  readonly #vars = new Map<string, tf.Variable>();
  readonly #positions = new Map<string, tf.Tensor2D>();

  constructor(
    config: TinyVideoBackboneConfig | keyof typeof TINY_VIDEO_BACKBONE_PRESETS,
    options: TinyVideoBackboneOptions = {},
  ) {
    const c: TinyVideoBackboneConfig =
      typeof config === 'string' ? { ...TINY_VIDEO_BACKBONE_PRESETS[config] } : { ...config };
    if (c === undefined || !Number.isInteger(c.dim) || c.dim % c.numHeads !== 0 || c.freqDim % 2 !== 0) {
      throw new InvalidArgumentError(
        `TinyVideoBackbone: expected a preset name or a config with dim divisible by numHeads and an even freqDim, got ${JSON.stringify(config)}`,
      );
    }
    this.config = Object.freeze(c);
    this.featureDim = c.dim;
    this.numBlocks = c.numBlocks;
    this.name = options.name ?? `tiny_video_backbone_${++instances}`;
    const gen = new Generator(options.seed ?? 0);
    for (const spec of specsFor(c)) {
      const trainable = !spec.embedding || (options.trainableEmbeddings ?? false);
      const v = tf.tidy(() =>
        tf.variable(initValue(spec, gen.derive(spec.key)), trainable, `${this.name}/${spec.key}`),
      );
      this.#vars.set(spec.key, v);
    }
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.#vars;
  }

  /** The residual stream after the first `blocks` blocks, [B, N, D], no final norm. */
  features(
    x: LatentVideo,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
    blocks: number = this.numBlocks,
    options: TimestepOptions = {},
  ): TokenSequence {
    const c = this.config;
    if (!(x instanceof tf.Tensor) || x.rank !== 5 || x.shape[4] !== c.latentChannels) {
      throw new InvalidArgumentError(
        `TinyVideoBackbone.features: x must be [B, F, H, W, ${c.latentChannels}], got ${x instanceof tf.Tensor ? formatShape(x.shape) : typeof x}`,
      );
    }
    const [b, f, h, w] = x.shape;
    const [pt, ph, pw] = c.patchSize;
    if (f % pt !== 0 || h % ph !== 0 || w % pw !== 0) {
      throw new InvalidArgumentError(
        `TinyVideoBackbone.features: F, H, W of ${formatShape(x.shape)} must be multiples of the patch [${c.patchSize.join(', ')}]`,
      );
    }
    const ts = validateTimesteps('TinyVideoBackbone.features: timesteps', timesteps, b, options);
    const text = conditioning?.text;
    if (
      !(text instanceof tf.Tensor) ||
      text.rank !== 3 ||
      text.shape[0] !== b ||
      text.shape[2] !== c.textDim
    ) {
      throw new InvalidArgumentError(
        `TinyVideoBackbone.features: conditioning.text must be [${b}, L, ${c.textDim}], got ${text instanceof tf.Tensor ? formatShape(text.shape) : typeof text}`,
      );
    }
    if (!Number.isInteger(blocks) || blocks < 0 || blocks > this.numBlocks) {
      throw new InvalidArgumentError(
        `TinyVideoBackbone.features: blocks must be in [0, ${this.numBlocks}], got ${blocks}`,
      );
    }
    const grid: [number, number, number] = [f / pt, h / ph, w / pw];
    const n = grid[0] * grid[1] * grid[2];
    const positions = this.#positionCode(grid);
    return tf.tidy(() => {
      const v = (key: string) => this.#vars.get(key) as tf.Variable;
      // Patch embedding (Conv3d, kernel = stride = patch) and the position code.
      // @prfl/tensor's conv3d, not tf.conv3d: the gradient of the latter is wrong on wasm (tfjs 4.22).
      const patches = conv3d(x, v('patch_embedding.weight') as tf.Tensor5D, [pt, ph, pw]);
      let tokens = tf.add(tf.reshape(tf.add(patches, v('patch_embedding.bias')), [b, n, c.dim]), positions);
      // Conditioning vector: time embedding (Linear, SiLU, Linear) plus the mean text embedding.
      const time = linear(
        silu(
          linear(
            timestepCode(ts, c.freqDim),
            v('time_embedding.0.weight') as tf.Tensor2D,
            v('time_embedding.0.bias') as tf.Tensor1D,
          ),
        ),
        v('time_embedding.2.weight') as tf.Tensor2D,
        v('time_embedding.2.bias') as tf.Tensor1D,
      );
      const textVec = linear(
        maskedMean(text, conditioning.textMask),
        v('text_embedding.0.weight') as tf.Tensor2D,
        v('text_embedding.0.bias') as tf.Tensor1D,
      );
      const cond = silu(tf.add(time, textVec)); // [B, D]
      // One tidy per block: outside a gradient tape its intermediates are freed as soon as the block is
      // done (inside one, tfjs keeps what backward needs regardless).
      for (let i = 0; i < blocks; i++) {
        const input = tokens;
        tokens = tf.tidy(() => this.#block(i, input, cond));
      }
      return tokens as tf.Tensor3D;
    });
  }

  /** Frees the variables and cached position codes. */
  dispose(): void {
    for (const v of this.#vars.values()) v.dispose();
    this.#vars.clear();
    for (const t of this.#positions.values()) t.dispose();
    this.#positions.clear();
  }

  #block(i: number, x: tf.Tensor, cond: tf.Tensor): tf.Tensor {
    const c = this.config;
    const v = (key: string) => this.#vars.get(`blocks.${i}.${key}`) as tf.Variable;
    const [b, n, d] = x.shape as [number, number, number];
    const mod = linear(cond, v('modulation.weight') as tf.Tensor2D, v('modulation.bias') as tf.Tensor1D);
    const [shiftA, scaleA, shiftF, scaleF] = tf.split(tf.reshape(mod, [b, 1, 4 * d]), 4, 2) as tf.Tensor[];
    // Self-attention on the modulated LayerNorm.
    const hA = tf.add(tf.mul(layerNorm(x), tf.add(1, scaleA as tf.Tensor)), shiftA as tf.Tensor);
    const heads = c.numHeads;
    const hd = d / heads;
    const split = (t: tf.Tensor) =>
      tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, hd]), [0, 2, 1, 3]), [b * heads, n, hd]);
    const q = split(linear(hA, v('self_attn.q.weight') as tf.Tensor2D, v('self_attn.q.bias') as tf.Tensor1D));
    const k = split(linear(hA, v('self_attn.k.weight') as tf.Tensor2D, v('self_attn.k.bias') as tf.Tensor1D));
    const val = split(
      linear(hA, v('self_attn.v.weight') as tf.Tensor2D, v('self_attn.v.bias') as tf.Tensor1D),
    );
    // Scores and weighted values are batches of B * heads small products: tf.matMul's batched kernel is
    // faster here than @prfl/tensor's matMul, whose wasm path splits a batch into separate 2-D products
    // (built for large linear layers; measured ~8x slower for this shape on wasm). The linear layers use it.
    const attn = tf.softmax(tf.div(tf.matMul(q, k, false, true), Math.sqrt(hd)));
    const merged = tf.reshape(
      tf.transpose(tf.reshape(tf.matMul(attn, val), [b, heads, n, hd]), [0, 2, 1, 3]),
      [b, n, d],
    );
    const y = tf.add(
      x,
      linear(merged, v('self_attn.o.weight') as tf.Tensor2D, v('self_attn.o.bias') as tf.Tensor1D),
    );
    // FFN on the modulated LayerNorm.
    const hF = tf.add(tf.mul(layerNorm(y), tf.add(1, scaleF as tf.Tensor)), shiftF as tf.Tensor);
    const ffn = linear(
      gelu(linear(hF, v('ffn.0.weight') as tf.Tensor2D, v('ffn.0.bias') as tf.Tensor1D)),
      v('ffn.2.weight') as tf.Tensor2D,
      v('ffn.2.bias') as tf.Tensor1D,
    );
    return tf.add(y, ffn);
  }

  #positionCode(grid: [number, number, number]): tf.Tensor2D {
    const key = grid.join('x');
    let t = this.#positions.get(key);
    if (t === undefined) {
      t = tf.keep(
        tf.tensor2d(positionCode(grid, this.featureDim), [grid[0] * grid[1] * grid[2], this.featureDim]),
      );
      this.#positions.set(key, t);
    }
    return t;
  }
}

function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Mean of text embeddings over tokens, [B, L, Dt] -> [B, Dt], ignoring padding where a mask is given. */
function maskedMean(text: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
  if (mask === undefined) return tf.mean(text, 1);
  const m = tf.expandDims(tf.cast(mask, 'float32'), 2);
  return tf.div(tf.sum(tf.mul(text, m), 1), tf.maximum(tf.sum(m, 1), 1));
}
