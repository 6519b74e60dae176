/**
 * A small transformer text encoder for the embedded world, standing in for Wan's umT5-XXL: token
 * embedding + learned positional embedding, pre-LayerNorm transformer layers (multi-head self-attention
 * over the real tokens, GELU feed-forward), a final LayerNorm; outputs [B, textLen, textDim] with the
 * padded positions set to zero, which is what Wan feeds its DiT (umT5 states cut to the prompt's length,
 * then zero-padded to text_len) — plus the mask.
 *
 * Every product goes through @prfl/tensor's linear/matMul (the fast path on wasm); the token lookup is a
 * one-hot product, so its gradient is a matMul too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, Generator, InvalidArgumentError, linear, matMul, type Trainable } from '@prfl/tensor';
import { WordTokenizer } from './tokenizer.js';

export interface TextEncoderConfig {
  /** Tokens the embedding table holds (the tokenizer's vocabSize). */
  vocabSize: number;
  /** Sequence length (positions), the tokenizer's textLen. */
  textLen: number;
  /** Output width Dtext (the DiT's textDim). */
  dim: number;
  numLayers: number;
  numHeads: number;
  ffnDim: number;
  eps: number;
}

/** Presets without the vocabulary (taken from the tokenizer). `tiny` matches the tiny DiT: 16 tokens x 32. */
export const TEXT_ENCODER_PRESETS = {
  tiny: { textLen: 16, dim: 32, numLayers: 2, numHeads: 4, ffnDim: 64, eps: 1e-5 },
  small: { textLen: 64, dim: 128, numLayers: 4, numHeads: 4, ffnDim: 512, eps: 1e-5 },
} as const satisfies Record<string, Omit<TextEncoderConfig, 'vocabSize'>>;

export type TextEncoderPresetName = keyof typeof TEXT_ENCODER_PRESETS;

/** What the pipeline needs from anything that turns prompts into conditioning. */
export interface PromptEncoder {
  readonly textLen: number;
  readonly textDim: number;
  /** Embeddings [B, textLen, textDim] (zero at padding) and mask [B, textLen]; the caller disposes both. */
  encode(prompts: readonly string[]): PromptEmbeddings | Promise<PromptEmbeddings>;
}

export interface PromptEmbeddings {
  text: tf.Tensor3D;
  mask: tf.Tensor2D;
}

export interface TextParamSpec {
  name: string;
  shape: number[];
  init: { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };
}

/** The parameter table (names, tfjs shapes: Linear weights [in, out]). */
export function textEncoderParamSpecs(c: TextEncoderConfig): TextParamSpec[] {
  const specs: TextParamSpec[] = [];
  const std = 0.02;
  const outStd = 0.02 / Math.sqrt(2 * Math.max(1, c.numLayers));
  const lin = (name: string, i: number, o: number, s = std) => {
    specs.push({ name: `${name}.weight`, shape: [i, o], init: { kind: 'normal', std: s } });
    specs.push({ name: `${name}.bias`, shape: [o], init: { kind: 'zeros' } });
  };
  const norm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [c.dim], init: { kind: 'ones' } });
    specs.push({ name: `${name}.bias`, shape: [c.dim], init: { kind: 'zeros' } });
  };
  specs.push({ name: 'token_embedding.weight', shape: [c.vocabSize, c.dim], init: { kind: 'normal', std } });
  specs.push({ name: 'pos_embedding.weight', shape: [c.textLen, c.dim], init: { kind: 'normal', std } });
  for (let i = 0; i < c.numLayers; i++) {
    const p = `blocks.${i}`;
    norm(`${p}.norm1`);
    for (const n of ['q', 'k', 'v']) lin(`${p}.attn.${n}`, c.dim, c.dim);
    lin(`${p}.attn.o`, c.dim, c.dim, outStd);
    norm(`${p}.norm2`);
    lin(`${p}.ffn.0`, c.dim, c.ffnDim);
    lin(`${p}.ffn.2`, c.ffnDim, c.dim, outStd);
  }
  norm('norm');
  return specs;
}

function checkConfig(c: TextEncoderConfig): void {
  for (const k of ['vocabSize', 'textLen', 'dim', 'numHeads', 'ffnDim'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new InvalidArgumentError(
        `TextEncoder config: ${k} must be a positive integer, got ${String(c[k])}`,
      );
    }
  }
  if (!Number.isInteger(c.numLayers) || c.numLayers < 0) {
    throw new InvalidArgumentError(
      `TextEncoder config: numLayers must be a non-negative integer, got ${String(c.numLayers)}`,
    );
  }
  if (c.dim % c.numHeads !== 0) {
    throw new InvalidArgumentError(
      `TextEncoder config: dim (${c.dim}) must be divisible by numHeads (${c.numHeads})`,
    );
  }
  if (!(c.eps > 0))
    throw new InvalidArgumentError(`TextEncoder config: eps must be positive, got ${String(c.eps)}`);
}

/** LayerNorm over the last axis with weight and bias. */
export function layerNormAffine(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/** GELU, tanh approximation: x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)). */
function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.mul(x, tf.sigmoid(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), 2 * Math.sqrt(2 / Math.PI)))),
  );
}

/** The sizes a text encoder config names (vocabSize and textLen come from the tokenizer). */
export type TextEncoderSizes = Omit<TextEncoderConfig, 'vocabSize' | 'textLen'>;

/**
 * The sizes of a text encoder from a preset name or a partial config. A partial config's missing fields
 * come from `base` (a preset name or full sizes), by default 'tiny': this encoder stands in for Wan's
 * umT5-XXL, so it has no Wan defaults to mirror, and 'tiny' matches the tiny DiT (32-wide text). The
 * same rule as the DiT's and the VAE's configs, with this family's own default.
 *
 * @throws InvalidArgumentError for an unknown preset or a config that cannot build the network.
 */
export function textEncoderSizes(
  config: TextEncoderPresetName | Partial<TextEncoderSizes> = 'tiny',
  base: TextEncoderPresetName | TextEncoderSizes = 'tiny',
): TextEncoderSizes {
  const preset = (name: string): TextEncoderSizes => {
    const p = (TEXT_ENCODER_PRESETS as Record<string, Omit<TextEncoderConfig, 'vocabSize'>>)[name];
    if (p === undefined) {
      throw new InvalidArgumentError(
        `TransformerTextEncoder: unknown preset '${name}'; expected one of ${Object.keys(TEXT_ENCODER_PRESETS).join(', ')}`,
      );
    }
    const { textLen: _t, ...sizes } = p;
    return sizes;
  };
  const baseSizes = typeof base === 'string' ? preset(base) : base;
  const merged: Partial<TextEncoderConfig> =
    typeof config === 'string' ? preset(config) : { ...baseSizes, ...config };
  // vocabSize and textLen belong to the tokenizer; a config (e.g. an older checkpoint's) may carry them.
  const { vocabSize: _v, textLen: _t, ...sizes } = merged;
  checkConfig({ ...(sizes as TextEncoderSizes), vocabSize: 1, textLen: 1 });
  return sizes as TextEncoderSizes;
}

export interface TransformerTextEncoderOptions {
  tokenizer: WordTokenizer;
  /** A preset name or the sizes (vocabSize and textLen come from the tokenizer). Default 'tiny'. */
  config?: TextEncoderPresetName | Partial<TextEncoderSizes>;
  /** What a partial `config`'s missing fields are taken from (see `textEncoderSizes`). Default 'tiny'. */
  base?: TextEncoderPresetName | TextEncoderSizes;
  seed?: number | string;
  /** Prefix of the tfjs variable names; default a fresh `text_encoder_<n>`. */
  name?: string;
  trainable?: boolean;
  /** Initial values by parameter name (exactly the parameters); copied. */
  weights?: ReadonlyMap<string, tf.Tensor>;
}

let instances = 0;

/** The small transformer text encoder; implements PromptEncoder and Trainable. */
export class TransformerTextEncoder implements PromptEncoder, Trainable {
  readonly config: TextEncoderConfig;
  readonly tokenizer: WordTokenizer;
  readonly name: string;
  private readonly specs: TextParamSpec[];
  private readonly vars = new Map<string, tf.Variable>();
  private disposed = false;

  constructor(options: TransformerTextEncoderOptions) {
    const { tokenizer } = options;
    if (!(tokenizer instanceof WordTokenizer)) {
      throw new InvalidArgumentError('TransformerTextEncoder: options.tokenizer must be a WordTokenizer');
    }
    const sizes = textEncoderSizes(options.config ?? 'tiny', options.base);
    this.config = { ...sizes, vocabSize: tokenizer.vocabSize, textLen: tokenizer.textLen };
    checkConfig(this.config);
    this.tokenizer = tokenizer;
    this.name = options.name ?? `text_encoder_${++instances}`;
    this.specs = textEncoderParamSpecs(this.config);
    const gen = new Generator(options.seed ?? 0);
    const trainable = options.trainable ?? true;
    if (options.weights !== undefined) {
      const expected = new Set(this.specs.map((s) => s.name));
      const missing = this.specs.filter((s) => !options.weights?.has(s.name)).map((s) => s.name);
      const unexpected = [...options.weights.keys()].filter((k) => !expected.has(k));
      if (missing.length || unexpected.length) {
        throw new InvalidArgumentError(
          `${this.name} weights: missing (${missing.length}): ${missing.join(', ')}; unexpected (${unexpected.length}): ${unexpected.join(', ')}`,
        );
      }
      for (const s of this.specs) {
        const t = options.weights.get(s.name) as tf.Tensor;
        if (t.shape.join() !== s.shape.join()) {
          throw new InvalidArgumentError(
            `${this.name} weights: ${s.name} has shape ${formatShape(t.shape)}, expected ${formatShape(s.shape)}`,
          );
        }
      }
    }
    for (const s of this.specs) {
      const given = options.weights?.get(s.name);
      const v = tf.tidy(() => {
        let init: tf.Tensor;
        if (given !== undefined) init = tf.cast(given, 'float32');
        else if (s.init.kind === 'normal') init = gen.derive(s.name).normal(s.shape, 0, s.init.std);
        else init = s.init.kind === 'ones' ? tf.ones(s.shape) : tf.zeros(s.shape);
        return tf.variable(init, trainable, `${this.name}/${s.name}`);
      });
      this.vars.set(s.name, v);
    }
  }

  get textLen(): number {
    return this.config.textLen;
  }

  get textDim(): number {
    return this.config.dim;
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.vars;
  }

  paramSpecs(): readonly TextParamSpec[] {
    return this.specs;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  /** Tokenizes and encodes prompts: [B, textLen, dim] (zero at padding) and the mask [B, textLen]. */
  encode(prompts: readonly string[]): PromptEmbeddings {
    const { ids, mask } = this.tokenizer.tokenizeBatch(prompts);
    try {
      return { text: this.forward(ids, mask), mask };
    } finally {
      ids.dispose();
    }
  }

  /** The network on token ids int32 [B, textLen] and mask [B, textLen] -> [B, textLen, dim]. Differentiable. */
  forward(ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor3D {
    if (this.disposed) throw new InvalidArgumentError(`${this.name}: the text encoder has been disposed`);
    const c = this.config;
    if (!(ids instanceof tf.Tensor) || ids.rank !== 2 || ids.shape[1] !== c.textLen) {
      throw new InvalidArgumentError(
        `ids: expected [B, ${c.textLen}] token ids, got ${ids instanceof tf.Tensor ? formatShape(ids.shape) : typeof ids}`,
      );
    }
    if (!(mask instanceof tf.Tensor) || mask.shape.join() !== ids.shape.join()) {
      throw new InvalidArgumentError(
        `mask: expected ${formatShape(ids.shape)} like ids, got ${mask instanceof tf.Tensor ? formatShape(mask.shape) : typeof mask}`,
      );
    }
    const w = (k: string) => this.vars.get(k) as tf.Variable;
    return tf.tidy(() => {
      const [b, l] = ids.shape;
      const d = c.dim;
      const h = c.numHeads;
      const dh = d / h;
      const oneHot = tf.oneHot(tf.reshape(tf.cast(ids, 'int32'), [b * l]), c.vocabSize);
      let x = tf.reshape(matMul(oneHot, w('token_embedding.weight')), [b, l, d]);
      x = tf.add(x, w('pos_embedding.weight'));
      // Additive key bias: padding keys get -1e9 (every prompt has at least its [EOS]).
      const bias = tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, 'float32')), -1e9), [b, 1, 1, l]);
      const keyBias = tf.reshape(tf.tile(bias, [1, h, 1, 1]), [b * h, 1, l]);
      const heads = (t: tf.Tensor) =>
        tf.reshape(tf.transpose(tf.reshape(t, [b, l, h, dh]), [0, 2, 1, 3]), [b * h, l, dh]);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `blocks.${i}`;
        const n1 = layerNormAffine(x, w(`${p}.norm1.weight`), w(`${p}.norm1.bias`), c.eps);
        const q = heads(
          linear(n1, w(`${p}.attn.q.weight`) as tf.Tensor2D, w(`${p}.attn.q.bias`) as tf.Tensor1D),
        );
        const k = heads(
          linear(n1, w(`${p}.attn.k.weight`) as tf.Tensor2D, w(`${p}.attn.k.bias`) as tf.Tensor1D),
        );
        const v = heads(
          linear(n1, w(`${p}.attn.v.weight`) as tf.Tensor2D, w(`${p}.attn.v.bias`) as tf.Tensor1D),
        );
        const scores = tf.add(tf.mul(matMul(q, k, false, true), 1 / Math.sqrt(dh)), keyBias);
        const att = matMul(tf.softmax(scores), v);
        const merged = tf.reshape(tf.transpose(tf.reshape(att, [b, h, l, dh]), [0, 2, 1, 3]), [b, l, d]);
        x = tf.add(
          x,
          linear(merged, w(`${p}.attn.o.weight`) as tf.Tensor2D, w(`${p}.attn.o.bias`) as tf.Tensor1D),
        );
        const n2 = layerNormAffine(x, w(`${p}.norm2.weight`), w(`${p}.norm2.bias`), c.eps);
        const f = gelu(
          linear(n2, w(`${p}.ffn.0.weight`) as tf.Tensor2D, w(`${p}.ffn.0.bias`) as tf.Tensor1D),
        );
        x = tf.add(x, linear(f, w(`${p}.ffn.2.weight`) as tf.Tensor2D, w(`${p}.ffn.2.bias`) as tf.Tensor1D));
      }
      const out = layerNormAffine(x, w('norm.weight'), w('norm.bias'), c.eps);
      return tf.mul(out, tf.expandDims(tf.cast(mask, 'float32'), 2)) as tf.Tensor3D;
    });
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }
}
