/**
 * The Wan DiT forward pass as plain functions of (weights, config, inputs), following WanModel.forward,
 * WanAttentionBlock.forward and Head.forward of wan/modules/model.py. Weights are looked up by Wan's
 * state-dict keys; tokens are [B, N, D] with N = F/pt * H/ph * W/pw in (f, h, w) order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { linear } from '@prfl/tensor';
import { gelu, geluTanh, silu } from './activations.js';
import { attention } from './attention.js';
import type { WanDiTConfig } from './config.js';
import { type PatchGrid, patchify, sinusoidalEmbedding, unpatchify } from './embeddings.js';
import { layerNorm, rmsNorm } from './norm.js';
import { applyRope, type RopeTables } from './rope.js';

/**
 * Adjusts a Linear layer's output: `(module, input, output) => output'`, with `module` the layer's Wan key
 * without `.weight` (e.g. `blocks.3.self_attn.q`). LoRA attaches here (@prfl/refl): the base weights stay
 * as they are and the adapter's own variables are read inside the same forward pass, so a tape (or a
 * segment's re-run) differentiates them like any other weight.
 */
export type LinearAdapter = (module: string, input: tf.Tensor, output: tf.Tensor) => tf.Tensor;

/** Looks a weight up by its Wan key (tfjs layout); `linearAdapter`, when set, adjusts every Linear's output. */
export type WeightLookup = ((name: string) => tf.Tensor) & { linearAdapter?: LinearAdapter | null };

/** Padding keys get this added to their attention scores: exp underflows to exactly 0. */
const MASKED_SCORE = -1e9;

/**
 * What every block reads besides the token stream, computed once per forward pass by `embedConditions`.
 * `dispose` frees the tensors it owns (not the RoPE tables, which belong to the model's cache).
 */
export interface WanDiTContext {
  readonly grid: PatchGrid;
  /** Time embedding e [B, D] (the head's modulation reads it). */
  readonly timeEmbedding: tf.Tensor2D;
  /** time_projection(e) as [B, 6, D]: shift, scale, gate of attention and FFN, before each block's own modulation. */
  readonly modulation: tf.Tensor3D;
  /** Embedded text [B, textLen, D]. */
  readonly text: tf.Tensor3D;
  /** Shape [B, textLen]; 0 for tokens to attend to, a large negative number for padding (only with a text mask). */
  readonly textBias?: tf.Tensor2D;
  /** i2v: embedded image tokens [B, Limg, D]. */
  readonly image?: tf.Tensor3D;
  readonly rope: RopeTables;
  dispose(): void;
}

function lin(w: WeightLookup, x: tf.Tensor, prefix: string): tf.Tensor {
  const y = linear(x, w(`${prefix}.weight`) as tf.Tensor2D, w(`${prefix}.bias`) as tf.Tensor1D);
  return w.linearAdapter ? w.linearAdapter(prefix, x, y) : y;
}

/** x * (1 + scale) + shift, with shift and scale [B, 1, D] broadcast over tokens. */
function modulate(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(x, tf.add(scale, 1)), shift);
}

/**
 * A text mask [B, L] (1 = token, 0 = padding) as the cross-attention key bias [B, textLen]: 0 for real
 * tokens, a large negative number for padding, including the zero padding up to textLen.
 */
export function textKeyBias(textMask: tf.Tensor2D, textLen: number): tf.Tensor2D {
  return tf.tidy(() => {
    const padding = textLen - textMask.shape[1];
    const mask =
      padding > 0
        ? tf.pad(tf.cast(textMask, 'float32'), [
            [0, 0],
            [0, padding],
          ])
        : tf.cast(textMask, 'float32');
    return tf.mul(tf.sub(1, mask), MASKED_SCORE) as tf.Tensor2D;
  });
}

/** Patch embedding: the noisy latent (with the i2v condition concatenated on channels) to tokens [B, N, D]. */
export function embedPatches(w: WeightLookup, c: WanDiTConfig, input: tf.Tensor5D): tf.Tensor3D {
  return tf.tidy(() => {
    const [pt, ph, pw] = c.patchSize;
    const weight = tf.reshape(w('patch_embedding.weight'), [pt * ph * pw * c.inDim, c.dim]) as tf.Tensor2D;
    return linear(
      patchify(input, c.patchSize),
      weight,
      w('patch_embedding.bias') as tf.Tensor1D,
    ) as tf.Tensor3D;
  });
}

/**
 * Everything the blocks read besides the tokens: time embedding and its 6-way projection, the embedded
 * text context (zero-padded to textLen first, as Wan does) with an optional padding mask, the embedded
 * image tokens (i2v), and the RoPE tables of the grid.
 */
export function embedConditions(
  w: WeightLookup,
  c: WanDiTConfig,
  args: {
    grid: PatchGrid;
    timesteps: readonly number[];
    text: tf.Tensor3D;
    textMask?: tf.Tensor2D;
    imageTokens?: tf.Tensor3D;
    rope: RopeTables;
  },
): WanDiTContext {
  const owned = tf.tidy(() => {
    const b = args.timesteps.length;
    const sinusoid = sinusoidalEmbedding(args.timesteps, c.freqDim);
    const e = lin(w, silu(lin(w, sinusoid, 'time_embedding.0')), 'time_embedding.2') as tf.Tensor2D;
    const e0 = tf.reshape(lin(w, silu(e), 'time_projection.1'), [b, 6, c.dim]) as tf.Tensor3D;

    const padding = c.textLen - args.text.shape[1];
    const text =
      padding > 0
        ? tf.pad(args.text, [
            [0, 0],
            [0, padding],
            [0, 0],
          ])
        : args.text;
    const context = lin(w, geluTanh(lin(w, text, 'text_embedding.0')), 'text_embedding.2') as tf.Tensor3D;
    const textBias = args.textMask === undefined ? undefined : textKeyBias(args.textMask, c.textLen);
    let image: tf.Tensor3D | undefined;
    if (args.imageTokens !== undefined) {
      // MLPProj: torch.nn.LayerNorm (eps 1e-5) -> Linear -> GELU (exact) -> Linear -> LayerNorm.
      let y: tf.Tensor = layerNorm(
        args.imageTokens,
        1e-5,
        w('img_emb.proj.0.weight') as tf.Tensor1D,
        w('img_emb.proj.0.bias') as tf.Tensor1D,
      );
      y = lin(w, gelu(lin(w, y, 'img_emb.proj.1')), 'img_emb.proj.3');
      image = layerNorm(
        y,
        1e-5,
        w('img_emb.proj.4.weight') as tf.Tensor1D,
        w('img_emb.proj.4.bias') as tf.Tensor1D,
      ) as tf.Tensor3D;
    }
    return { e, e0, context, textBias, image };
  });
  const tensors: tf.Tensor[] = [owned.e, owned.e0, owned.context];
  if (owned.textBias !== undefined) tensors.push(owned.textBias);
  if (owned.image !== undefined) tensors.push(owned.image);
  const ctx: WanDiTContext = {
    grid: args.grid,
    timeEmbedding: owned.e,
    modulation: owned.e0,
    text: owned.context,
    rope: args.rope,
    dispose: () => tf.dispose(tensors),
    ...(owned.textBias !== undefined ? { textBias: owned.textBias } : {}),
    ...(owned.image !== undefined ? { image: owned.image } : {}),
  };
  return ctx;
}

function selfAttention(
  w: WeightLookup,
  c: WanDiTConfig,
  p: string,
  x: tf.Tensor3D,
  rope: RopeTables,
): tf.Tensor {
  let q = lin(w, x, `${p}.q`);
  let k = lin(w, x, `${p}.k`);
  const v = lin(w, x, `${p}.v`) as tf.Tensor3D;
  if (c.qkNorm) {
    q = rmsNorm(q, c.eps, w(`${p}.norm_q.weight`) as tf.Tensor1D);
    k = rmsNorm(k, c.eps, w(`${p}.norm_k.weight`) as tf.Tensor1D);
  }
  const out = attention(applyRope(q as tf.Tensor3D, rope), applyRope(k as tf.Tensor3D, rope), v, c.numHeads);
  return lin(w, out, `${p}.o`);
}

/** WanT2VCrossAttention, plus WanI2VCrossAttention's separate image branch when the context has one. */
function crossAttention(
  w: WeightLookup,
  c: WanDiTConfig,
  p: string,
  x: tf.Tensor,
  ctx: WanDiTContext,
): tf.Tensor {
  let q = lin(w, x, `${p}.q`);
  let k = lin(w, ctx.text, `${p}.k`);
  const v = lin(w, ctx.text, `${p}.v`) as tf.Tensor3D;
  if (c.qkNorm) {
    q = rmsNorm(q, c.eps, w(`${p}.norm_q.weight`) as tf.Tensor1D);
    k = rmsNorm(k, c.eps, w(`${p}.norm_k.weight`) as tf.Tensor1D);
  }
  let out: tf.Tensor = attention(q as tf.Tensor3D, k as tf.Tensor3D, v, c.numHeads, ctx.textBias);
  if (ctx.image !== undefined) {
    let kImg = lin(w, ctx.image, `${p}.k_img`);
    if (c.qkNorm) kImg = rmsNorm(kImg, c.eps, w(`${p}.norm_k_img.weight`) as tf.Tensor1D);
    const vImg = lin(w, ctx.image, `${p}.v_img`) as tf.Tensor3D;
    out = tf.add(out, attention(q as tf.Tensor3D, kImg as tf.Tensor3D, vImg, c.numHeads));
  }
  return lin(w, out, `${p}.o`);
}

/**
 * Block `index` (WanAttentionBlock.forward):
 *   x += gate1 * SelfAttn(LN(x) (1 + scale1) + shift1)
 *   x += CrossAttn(norm3(x), context)
 *   x += gate2 * FFN(LN(x) (1 + scale2) + shift2)
 * with (shift1, scale1, gate1, shift2, scale2, gate2) = the block's modulation [1, 6, D] + e0 [B, 6, D].
 */
export function wanBlock(
  w: WeightLookup,
  c: WanDiTConfig,
  index: number,
  x: tf.Tensor3D,
  ctx: WanDiTContext,
): tf.Tensor3D {
  return tf.tidy(() => {
    const p = `blocks.${index}`;
    const mod = tf.add(w(`${p}.modulation`), ctx.modulation);
    const [shift1, scale1, gate1, shift2, scale2, gate2] = tf.split(mod, 6, 1) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
    const h1 = modulate(layerNorm(x, c.eps), shift1, scale1) as tf.Tensor3D;
    let y: tf.Tensor = tf.add(x, tf.mul(selfAttention(w, c, `${p}.self_attn`, h1, ctx.rope), gate1));

    const normed = c.crossAttnNorm
      ? layerNorm(y, c.eps, w(`${p}.norm3.weight`) as tf.Tensor1D, w(`${p}.norm3.bias`) as tf.Tensor1D)
      : y;
    y = tf.add(y, crossAttention(w, c, `${p}.cross_attn`, normed, ctx));

    const h2 = modulate(layerNorm(y, c.eps), shift2, scale2);
    const ffn = lin(w, geluTanh(lin(w, h2, `${p}.ffn.0`)), `${p}.ffn.2`);
    return tf.add(y, tf.mul(ffn, gate2)) as tf.Tensor3D;
  });
}

/** Head.forward then unpatchify: tokens [B, N, D] -> velocity [B, F, H, W, outDim]. */
export function wanHead(w: WeightLookup, c: WanDiTConfig, x: tf.Tensor3D, ctx: WanDiTContext): tf.Tensor5D {
  return tf.tidy(() => {
    const mod = tf.add(w('head.modulation'), tf.expandDims(ctx.timeEmbedding, 1));
    const [shift, scale] = tf.split(mod, 2, 1) as [tf.Tensor, tf.Tensor];
    const y = lin(w, modulate(layerNorm(x, c.eps), shift, scale), 'head.head') as tf.Tensor3D;
    return unpatchify(y, ctx.grid, c.patchSize, c.outDim);
  });
}
