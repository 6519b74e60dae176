/**
 * Matmul FLOPs of one Wan DiT forward pass (2 per multiply-add), for throughput figures. Counts the
 * linear layers and the two attention products; norms, activations and elementwise ops are left out
 * (they are memory-bound and small next to the products). A backward pass costs twice the forward
 * products (one for the input gradient, one for the weight gradient).
 */
import type { WanDiTConfig } from './config.js';

export interface WanDiTFlops {
  /** Linear layers (embeddings, q/k/v/o, FFN, head). */
  linear: number;
  /** q kᵀ and p v of self- and cross-attention. */
  attention: number;
  /** linear + attention. */
  forward: number;
  /** 3 x forward: the products of a forward and a backward pass. */
  forwardBackward: number;
}

/**
 * FLOPs for a batch of `batch` latents of `tokens` patches each, text padded to textLen, `imageTokens`
 * CLIP tokens (i2v), running the first `blocks` blocks (default all) and the head when `head` (default
 * true when all blocks run).
 */
export function wanDiTFlops(
  c: WanDiTConfig,
  args: { batch: number; tokens: number; imageTokens?: number; blocks?: number; head?: boolean },
): WanDiTFlops {
  const b = args.batch;
  const n = args.tokens;
  const l = c.textLen;
  const li = c.modelType === 'i2v' ? (args.imageTokens ?? 257) : 0;
  const blocks = args.blocks ?? c.numLayers;
  const head = args.head ?? blocks === c.numLayers;
  const d = c.dim;
  const [pt, ph, pw] = c.patchSize;
  const patch = pt * ph * pw;
  const mm = (rows: number, k: number, cols: number) => 2 * rows * k * cols;

  let linear = mm(b * n, patch * c.inDim, d); // patch embedding
  linear += mm(b * l, c.textDim, d) + mm(b * l, d, d); // text embedding
  linear += mm(b, c.freqDim, d) + mm(b, d, d) + mm(b, d, 6 * d); // time
  if (li > 0) linear += mm(b * li, c.imageDim, c.imageDim) + mm(b * li, c.imageDim, d);
  let perBlock = 4 * mm(b * n, d, d); // self-attention q, k, v, o
  perBlock += 2 * mm(b * n, d, d) + 2 * mm(b * l, d, d); // cross-attention q, o; k, v on the text
  if (li > 0) perBlock += 2 * mm(b * li, d, d); // k_img, v_img
  perBlock += mm(b * n, d, c.ffnDim) + mm(b * n, c.ffnDim, d); // FFN
  linear += blocks * perBlock;
  if (head) linear += mm(b * n, d, patch * c.outDim);
  // Per head: scores [n, m] = q [n, dh] kᵀ, out = p [n, m] v [m, dh]: 2 * 2 n m dh, summed over heads = 4 n m D.
  const attention = blocks * b * 4 * n * d * (n + l + li);
  const forward = linear + attention;
  return { linear, attention, forward, forwardBackward: 3 * forward };
}
