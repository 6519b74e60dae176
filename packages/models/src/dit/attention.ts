/**
 * Multi-head scaled dot-product attention with matMul and softmax (no Einsum: tfjs registers no gradient
 * for it, and wasm has no kernel). Two layouts of the same arithmetic:
 * - batched: heads as [B * heads, tokens, headDim], keys split straight into the transposed layout
 *   [B * heads, headDim, tokens]; one batched product each for scores and outputs (GPU backends);
 * - per head: 2-D products on column blocks of [tokens, D] (wasm and cpu). wasm's fast matMul is the
 *   plain 2-D product, and its batched path splits and re-stacks the [heads, N, N] score tensors, which
 *   costs more than the products at DiT sizes (bench/results/dit.json).
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from '@prfl/tensor';

/** [B, N, H * d] -> [B * H, N, d]. */
export function splitHeads(x: tf.Tensor3D, numHeads: number): tf.Tensor3D {
  const [b, n, dim] = x.shape;
  const d = dim / numHeads;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, n, numHeads, d]), [0, 2, 1, 3]), [b * numHeads, n, d]);
}

/** [B, N, H * d] -> [B * H, d, N] (keys, ready to be the right operand of q @ kᵀ). */
export function splitHeadsTransposed(x: tf.Tensor3D, numHeads: number): tf.Tensor3D {
  const [b, n, dim] = x.shape;
  const d = dim / numHeads;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, n, numHeads, d]), [0, 2, 3, 1]), [b * numHeads, d, n]);
}

/** [B * H, N, d] -> [B, N, H * d]. */
export function mergeHeads(x: tf.Tensor3D, batch: number): tf.Tensor3D {
  const [bh, n, d] = x.shape;
  const h = bh / batch;
  return tf.reshape(tf.transpose(tf.reshape(x, [batch, h, n, d]), [0, 2, 1, 3]), [batch, n, h * d]);
}

/**
 * softmax(q kᵀ / sqrt(d) + keyBias) v for q [B, N, H*d], k and v [B, L, H*d]; returns [B, N, H*d].
 * `keyBias` [B, L] is added to every query's scores (0 for keys to attend to, a large negative number
 * for padding).
 */
export function attention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  numHeads: number,
  keyBias?: tf.Tensor2D,
  layout: AttentionLayout = defaultAttentionLayout(),
): tf.Tensor3D {
  return layout === 'per-head'
    ? attentionPerHead(q, k, v, numHeads, keyBias)
    : attentionBatched(q, k, v, numHeads, keyBias);
}

/** How `attention` arranges its products (same results up to rounding). */
export type AttentionLayout = 'batched' | 'per-head';

/** 'per-head' on the CPU backends (wasm, cpu), 'batched' elsewhere. */
export function defaultAttentionLayout(): AttentionLayout {
  const backend = tf.getBackend();
  return backend === 'wasm' || backend === 'cpu' ? 'per-head' : 'batched';
}

function attentionBatched(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  numHeads: number,
  keyBias?: tf.Tensor2D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, n, dim] = q.shape;
    const l = k.shape[1];
    const scale = 1 / Math.sqrt(dim / numHeads);
    // Scaling q ([N, d]) is cheaper than scaling the scores ([N, L]).
    const qh = splitHeads(tf.mul(q, scale) as tf.Tensor3D, numHeads);
    const kt = splitHeadsTransposed(k, numHeads);
    const vh = splitHeads(v, numHeads);
    let scores = matMul(qh, kt);
    if (keyBias !== undefined) {
      scores = tf.reshape(
        tf.add(tf.reshape(scores, [b, numHeads, n, l]), tf.reshape(keyBias, [b, 1, 1, l])),
        [b * numHeads, n, l],
      );
    }
    const probs = tf.softmax(scores);
    return mergeHeads(matMul(probs, vh) as tf.Tensor3D, b);
  });
}

/** Splits [B, ...] into B tensors without the batch axis (one slice per element; none for B = 1). */
function perBatch(x: tf.Tensor): tf.Tensor[] {
  const [b, ...rest] = x.shape;
  if (b === 1) return [tf.reshape(x, rest)];
  return tf.split(x, b, 0).map((t) => tf.reshape(t, rest));
}

function attentionPerHead(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  numHeads: number,
  keyBias?: tf.Tensor2D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [, n, dim] = q.shape;
    const scale = 1 / Math.sqrt(dim / numHeads);
    const qs = perBatch(tf.mul(q, scale));
    const ks = perBatch(k);
    const vs = perBatch(v);
    const biases = keyBias === undefined ? undefined : perBatch(keyBias);
    const outs = qs.map((qb, i) => {
      // Column blocks of q and v, row blocks of kᵀ: every product is a plain 2-D one.
      const qh = numHeads === 1 ? [qb] : tf.split(qb, numHeads, 1);
      const kt = tf.transpose(ks[i] as tf.Tensor);
      const kh = numHeads === 1 ? [kt] : tf.split(kt, numHeads, 0);
      const vh = numHeads === 1 ? [vs[i] as tf.Tensor] : tf.split(vs[i] as tf.Tensor, numHeads, 1);
      const heads = qh.map((qhh, h) => {
        let scores = matMul(qhh, kh[h] as tf.Tensor);
        if (biases !== undefined) scores = tf.add(scores, biases[i] as tf.Tensor);
        return matMul(tf.softmax(scores), vh[h] as tf.Tensor);
      });
      return heads.length === 1 ? (heads[0] as tf.Tensor) : tf.concat(heads, 1);
    });
    if (outs.length === 1) return tf.reshape(outs[0] as tf.Tensor, [1, n, dim]) as tf.Tensor3D;
    return tf.stack(outs, 0) as tf.Tensor3D;
  });
}
