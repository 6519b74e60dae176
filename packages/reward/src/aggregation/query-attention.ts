/**
 * PAVRM's aggregation (docs/method.md §4): one learnable query q [1, D] attends over all N tokens of the backbone's
 * features with multi-head attention (separate Q/K/V input projections and an output projection, as
 * torch.nn.MultiheadAttention computes them), and z = attention_output + q: "observation + a
 * content-agnostic quality prior".
 *
 * The weights are those of the reference's `QueryAttention` module (HY-Video-PRFL, diffusers_lite/utils/
 * network.py): `queries` and `multihead_attn.{in_proj_weight, in_proj_bias, out_proj.weight,
 * out_proj.bias}`; Q, K and V are the three row blocks of PyTorch's packed in_proj_weight [3D, D]. We hold
 * Linear weights in tfjs layout ([in, out]), so here in_proj_weight is [D, 3D] and Q/K/V are its column
 * blocks.
 *
 * The reference adds the query after squeezing the attention output to [B, D] while the query is still
 * [B, 1, D], which broadcasts to [B, B, D] and is only right for batch 1; we add q to each batch element.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape, formatShape, InvalidArgumentError, linear } from '@prfl/tensor';

/** The weights of the query attention, tfjs layouts (Linear [in, out]). */
export interface QueryAttentionWeights {
  /** The learnable query, [1, D]. */
  queries: tf.Tensor;
  /** Q, K, V input projections side by side, [D, 3D] (PyTorch's in_proj_weight [3D, D] transposed). */
  inProjWeight: tf.Tensor;
  /** The input projections' biases bq, bk, bv side by side, [3D]. */
  inProjBias: tf.Tensor;
  /** Output projection [D, D]. */
  outProjWeight: tf.Tensor;
  /** [D]. */
  outProjBias: tf.Tensor;
}

export interface QueryAttentionOptions {
  /** Attention heads; D must be divisible by it. Paper: 8. */
  numHeads: number;
  /** z = attention_output + q (the paper's default) when true; the bare attention output otherwise. */
  residual: boolean;
}

/**
 * Pools tokens [B, N, D] into one vector per batch element [B, D] with the learnable query.
 * Differentiable in the tokens and all weights; attention scores are computed as elementwise products
 * and sums (one query, so no matMul is needed there), the projections through @prfl/tensor's `linear`.
 *
 * @throws InvalidArgumentError for a tokens tensor that is not [B, N, D] with the weights' D, or D not
 *   divisible by numHeads.
 */
export function queryAttention(
  tokens: tf.Tensor,
  weights: QueryAttentionWeights,
  options: QueryAttentionOptions,
): tf.Tensor2D {
  if (weights.queries.rank !== 2 || weights.queries.shape[0] !== 1) {
    throw new InvalidArgumentError(
      `queryAttention: queries must be [1, D], got ${formatShape(weights.queries.shape)}`,
    );
  }
  const d = weights.queries.shape[1] as number;
  // tfjs layout [in, out]: a PyTorch in_proj_weight [3D, D] must be converted (linearWeightFromTorch).
  assertShape('queryAttention: inProjWeight ([D, 3D], tfjs layout)', weights.inProjWeight, [d, 3 * d]);
  assertShape('queryAttention: inProjBias', weights.inProjBias, [3 * d]);
  assertShape('queryAttention: outProjWeight ([D, D])', weights.outProjWeight, [d, d]);
  assertShape('queryAttention: outProjBias', weights.outProjBias, [d]);
  if (tokens.rank !== 3 || tokens.shape[2] !== d) {
    throw new InvalidArgumentError(
      `queryAttention: tokens must be [B, N, ${d}], got ${formatShape(tokens.shape)}`,
    );
  }
  const h = options.numHeads;
  if (!Number.isInteger(h) || h < 1 || d % h !== 0) {
    throw new InvalidArgumentError(
      `queryAttention: numHeads must be a positive divisor of the feature width ${d}, got ${String(h)}`,
    );
  }
  const [b, n] = tokens.shape as [number, number, number];
  const headDim = d / h;
  return tf.tidy(() => {
    const wq = tf.slice(weights.inProjWeight, [0, 0], [d, d]) as tf.Tensor2D;
    const wkv = tf.slice(weights.inProjWeight, [0, d], [d, 2 * d]) as tf.Tensor2D;
    const bq = tf.slice(weights.inProjBias, [0], [d]) as tf.Tensor1D;
    const bkv = tf.slice(weights.inProjBias, [d], [2 * d]) as tf.Tensor1D;

    // Projections: the query once, keys and values for every token.
    const q = linear(weights.queries, wq, bq); // [1, D]
    const kv = linear(tokens, wkv, bkv); // [B, N, 2D]
    const k = tf.reshape(tf.slice(kv, [0, 0, 0], [b, n, d]), [b, n, h, headDim]);
    const v = tf.reshape(tf.slice(kv, [0, 0, d], [b, n, d]), [b, n, h, headDim]);

    // Scaled dot products q·k / sqrt(headDim) per head: [B, N, H].
    const qHeads = tf.reshape(tf.div(q, Math.sqrt(headDim)), [1, 1, h, headDim]);
    const scores = tf.sum(tf.mul(k, qHeads), 3);
    // Softmax over the N tokens (axis 1), written with logSumExp so no transpose is needed.
    const attn = tf.exp(tf.sub(scores, tf.logSumExp(scores, 1, true)));

    // Weighted sum of values per head, heads concatenated: [B, D].
    const heads = tf.sum(tf.mul(tf.expandDims(attn, 3), v), 1);
    const out = linear(
      tf.reshape(heads, [b, d]),
      weights.outProjWeight as tf.Tensor2D,
      weights.outProjBias as tf.Tensor1D,
    );
    return (options.residual ? tf.add(out, weights.queries) : out) as tf.Tensor2D;
  });
}
