/**
 * The DiT's forward pass as a chain of segments for @prfl/tensor's segmented (checkpointed) backprop:
 * the embedding, then one segment per `blocksPerSegment` blocks, then (for the velocity) the head.
 * The backward pass then holds one segment's tape at a time instead of the whole network's.
 *
 * The activation passed between segments is the list [stream, e, e0, text(, image)]: the residual stream
 * plus the conditions every block reads. Carrying the conditions through the chain (rather than closing
 * over them) is what lets their gradients reach the time, text and image embeddings.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  InvalidArgumentError,
  type Segment,
  type Timestep,
  type TimestepsLike,
} from '@prfl/tensor';
import type { WanDiTConfig } from './config.js';
import type { PatchGrid } from './embeddings.js';
import {
  embedConditions,
  embedPatches,
  textKeyBias,
  type WanDiTContext,
  type WeightLookup,
  wanBlock,
  wanHead,
} from './forward.js';
import type { RopeTables } from './rope.js';

/** What the chain needs of a model (WanDiT and WanDiTBackbone pass themselves through `segments`). */
export interface SegmentableDiT {
  readonly config: WanDiTConfig;
  readonly numBlocks: number;
  readonly hasHead: boolean;
  readonly lookup: WeightLookup;
  /** Validates the inputs; returns the patch grid, its (cached) RoPE tables and the checked timesteps. */
  prepare(
    x: tf.Tensor5D,
    timesteps: TimestepsLike,
    conditioning: Conditioning,
  ): { grid: PatchGrid; rope: RopeTables; timesteps: readonly Timestep[] };
}

export interface WanDiTSegmentChain {
  /**
   * The chain's input: x in slot 0; the other slots repeat x as placeholders that the embedding segment
   * replaces (their input gradients are meaningless; read slot 0).
   */
  readonly input: tf.Tensor[];
  readonly segments: Segment<tf.Tensor[]>[];
  /** The chain's result: the velocity [B, F, H, W, C] (with the head) or the features [B, N, D]. */
  output(activation: readonly tf.Tensor[]): tf.Tensor;
  /** Frees what the chain closes over (the text key bias). Not the input. */
  dispose(): void;
}

export interface WanDiTSegmentOptions {
  /** Run the first `blocks` blocks (default all); without the head when fewer than all, or `head: false`. */
  blocks?: number;
  /** Blocks per segment (default 1). */
  blocksPerSegment?: number;
  /** End with the head and unpatchify (default: when the model has one and all blocks run). */
  head?: boolean;
  /** Accept timesteps that are all below 1 (see `validateTimesteps`); default false. */
  allowSmallTimesteps?: boolean;
}

/** @internal the chain behind `WanDiT.segments` / `WanDiTBackbone.segments`. */
export function wanDiTSegments(
  model: SegmentableDiT,
  x: tf.Tensor5D,
  timesteps: TimestepsLike,
  conditioning: Conditioning,
  options: WanDiTSegmentOptions = {},
): WanDiTSegmentChain {
  const blocks = options.blocks ?? model.numBlocks;
  const per = options.blocksPerSegment ?? 1;
  const hasHead = model.hasHead;
  const head = options.head ?? (hasHead && blocks === model.numBlocks);
  if (!Number.isInteger(blocks) || blocks < 0 || blocks > model.numBlocks) {
    throw new InvalidArgumentError(
      `wanDiTSegments: blocks must be an integer in [0, ${model.numBlocks}], got ${blocks}`,
    );
  }
  if (!Number.isInteger(per) || per < 1) {
    throw new InvalidArgumentError(`wanDiTSegments: blocksPerSegment must be a positive integer, got ${per}`);
  }
  if (head && !hasHead) throw new InvalidArgumentError('wanDiTSegments: a truncated backbone has no head');
  // Validates the inputs once, up front, and caches the RoPE tables outside any segment.
  const { grid, rope, timesteps: ts } = model.prepare(x, timesteps, conditioning);
  const c = model.config;
  const w = model.lookup;
  const textBias =
    conditioning.textMask === undefined ? undefined : textKeyBias(conditioning.textMask, c.textLen);
  const hasImage = conditioning.image?.tokens !== undefined;
  const latent = conditioning.image?.latent;

  const contextOf = (a: readonly tf.Tensor[]): WanDiTContext => ({
    grid,
    timeEmbedding: a[1] as tf.Tensor2D,
    modulation: a[2] as tf.Tensor3D,
    text: a[3] as tf.Tensor3D,
    rope,
    dispose: () => undefined,
    ...(textBias !== undefined ? { textBias } : {}),
    ...(hasImage ? { image: a[4] as tf.Tensor3D } : {}),
  });

  const segments: Segment<tf.Tensor[]>[] = [];
  segments.push((a) => {
    const input = a[0] as tf.Tensor5D;
    const full = latent === undefined ? input : (tf.concat([input, latent], 4) as tf.Tensor5D);
    const tokens = embedPatches(w, c, full);
    const ctx = embedConditions(w, c, {
      grid,
      timesteps: ts,
      text: conditioning.text,
      ...(hasImage ? { imageTokens: conditioning.image?.tokens as tf.Tensor3D } : {}),
      rope,
    });
    const out = [tokens, ctx.timeEmbedding, ctx.modulation, ctx.text];
    if (ctx.image !== undefined) out.push(ctx.image);
    return out;
  });
  for (let start = 0; start < blocks; start += per) {
    const end = Math.min(blocks, start + per);
    segments.push((a) => {
      const ctx = contextOf(a);
      let h = a[0] as tf.Tensor3D;
      for (let i = start; i < end; i++) h = wanBlock(w, c, i, h, ctx);
      return [h, ...a.slice(1)];
    });
  }
  if (head) {
    segments.push((a) => [wanHead(w, c, a[0] as tf.Tensor3D, contextOf(a)), ...a.slice(1)]);
  }
  return {
    input: Array.from({ length: hasImage ? 5 : 4 }, () => x),
    segments,
    output: (a) => a[0] as tf.Tensor,
    dispose: () => textBias?.dispose(),
  };
}
