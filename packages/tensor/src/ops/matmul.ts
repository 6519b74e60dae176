import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, formatShape } from '../errors.js';

/**
 * tfjs's wasm backend reaches XNNPACK speed (30-40 GFLOP/s on one core) only for a 2-D matMul without
 * transposes; a batched matMul or a transposed operand falls to a generic loop 10-15x slower
 * (bench/results/matmul.json). tfjs's own matMul gradient uses transposed matMuls, so training pays
 * that price twice. On wasm we therefore materialise transposes, split batches into 2-D products and
 * give the op a gradient built from the same fast path. Other backends use tf.matMul directly.
 */
/** Per-batch-element multiply-adds from which splitting a batched product into 2-D ones pays on wasm. */
const SPLIT_MIN_MACS = 2 ** 19;

function fastPath(): boolean {
  return tf.getBackend() === 'wasm';
}

function plain2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(a, b);
}

/** a @ b for rank-2 or rank-3 operands with equal batch, no transposes, via 2-D products. */
function product(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2) return plain2d(a as tf.Tensor2D, b as tf.Tensor2D);
  const [batch, m, k] = a.shape as [number, number, number];
  const n = b.shape[2] as number;
  if (batch === 1) return tf.reshape(plain2d(tf.reshape(a, [m, k]), tf.reshape(b, [k, n])), [1, m, n]);
  const as = tf.split(a, batch, 0);
  const bs = tf.split(b, batch, 0);
  const outs = as.map((ai, i) => plain2d(tf.reshape(ai, [m, k]), tf.reshape(bs[i] as tf.Tensor, [k, n])));
  return tf.stack(outs, 0);
}

function swapLast(x: tf.Tensor): tf.Tensor {
  return x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1]);
}

// customGrad's typing takes a rest parameter of tensors-or-save; the runtime passes (a, b, save).
const fastMatMul = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: product(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [product(dy, swapLast(sb)), product(swapLast(sa), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * Matrix product of rank-2 [M, K] x [K, N] or rank-3 [B, M, K] x [B, K, N] tensors (with optional
 * transposes of the last two axes), fast on every backend and differentiable. Use it for linear layers
 * and attention in place of tf.matMul.
 *
 * @throws InvalidArgumentError for ranks other than 2 and 3, mismatched ranks, batches or inner sizes.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (a.rank !== b.rank || (a.rank !== 2 && a.rank !== 3)) {
    throw new InvalidArgumentError(
      `matMul: expected two rank-2 or two rank-3 tensors, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
    );
  }
  const ka = a.shape[transposeA ? a.rank - 2 : a.rank - 1];
  const kb = b.shape[transposeB ? b.rank - 1 : b.rank - 2];
  if (ka !== kb || (a.rank === 3 && a.shape[0] !== b.shape[0])) {
    throw new InvalidArgumentError(
      `matMul: shapes ${formatShape(a.shape)}${transposeA ? 'ᵀ' : ''} and ${formatShape(b.shape)}${transposeB ? 'ᵀ' : ''} do not multiply (inner ${ka} vs ${kb}${a.rank === 3 ? `, batch ${a.shape[0]} vs ${b.shape[0]}` : ''})`,
    );
  }
  if (!fastPath()) return tf.matMul(a, b, transposeA, transposeB);
  if (a.rank === 3 && (a.shape[0] as number) > 1) {
    // Splitting a batch costs a few kernel launches per element; below about 2^19 multiply-adds per
    // element tfjs's generic batched kernel wins (measured on wasm: [64,16,16]x[64,16,16] 1.2 ms vs 16 ms
    // split; [8,256,64]x[8,64,256] 40 ms vs 8 ms).
    const m = a.shape[transposeA ? 2 : 1] as number;
    const n = b.shape[transposeB ? 1 : 2] as number;
    if (m * (ka as number) * n < SPLIT_MIN_MACS) return tf.matMul(a, b, transposeA, transposeB);
  }
  return tf.tidy(() => {
    const left = transposeA ? swapLast(a) : a;
    const right = transposeB ? swapLast(b) : b;
    return fastMatMul(left, right);
  });
}

/**
 * x @ w (+ bias) for x of any rank >= 2 ([..., K] x [K, N]): the shape of a linear layer with tfjs's
 * [in, out] weight layout. Flattens leading axes into one 2-D product.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const k = x.shape[x.rank - 1];
  if (weight.rank !== 2 || weight.shape[0] !== k) {
    throw new InvalidArgumentError(
      `linear: input ${formatShape(x.shape)} needs a weight [${k}, N], got ${formatShape(weight.shape)}`,
    );
  }
  const n = weight.shape[1];
  if (bias !== undefined && (bias.rank !== 1 || bias.shape[0] !== n)) {
    throw new InvalidArgumentError(`linear: bias must be [${n}], got ${formatShape(bias.shape)}`);
  }
  return tf.tidy(() => {
    const flat = tf.reshape(x, [-1, k]);
    let y = matMul(flat, weight);
    if (bias !== undefined) y = tf.add(y, bias);
    return tf.reshape(y, [...x.shape.slice(0, -1), n]);
  });
}
