/**
 * Wan's 3-D rotary position embedding (rope_params / rope_apply in wan/modules/model.py).
 *
 * A head of width d is read as d/2 complex numbers (interleaved pairs: x[2j] real, x[2j+1] imaginary).
 * The pairs are split between the token's frame, height and width index on the patch grid,
 * d/2 - 2*floor(d/6), floor(d/6), floor(d/6) pairs each; pair j of a part of width w (in reals) rotates
 * by position * theta^(-2j/w). The same rotation applies to every head.
 *
 * As real arithmetic: rope(x) = x * C + swapPairs(x) * S with C = (cos, cos), S = (-sin, +sin) per pair
 * and swapPairs(x)[2j] = x[2j+1], swapPairs(x)[2j+1] = x[2j]. C and S are made once per grid in float64
 * (as Wan does) and stored as float32 [N, dim] tables (tiled over heads), so rope runs on the [B, N, dim]
 * projections before the heads are split.
 *
 * swapPairs is a reverse of the last axis of [..., dim/2, 2] on GPU backends; on wasm and cpu, whose
 * Reverse kernels are slow (3-4x a matMul here), it is a product with the [headDim, headDim] pair-swap
 * permutation on [B * N * heads, headDim] rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, matMul } from '@prfl/tensor';
import { ROPE_MAX_POSITIONS, ropeSplit } from './config.js';

export const ROPE_THETA = 10000;

/** The rotation tables for one patch grid: cos and signed sin, [N, numHeads * headDim]. */
export interface RopeTables {
  readonly grid: readonly [number, number, number];
  readonly cos: tf.Tensor2D;
  readonly sin: tf.Tensor2D;
  /** The pair-swap permutation [headDim, headDim]. */
  readonly swap: tf.Tensor2D;
}

/** Angles per pair for positions 0..positions-1 of one part of width `width` (rope_params). */
function partAngles(width: number, position: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < width / 2; j++) out.push(position / ROPE_THETA ** ((2 * j) / width));
  return out;
}

/**
 * Builds the tables for a grid of (frames, height, width) patches, tokens in (f, h, w) row-major order.
 * The caller owns (and disposes) the tensors.
 */
export function ropeTables(
  grid: readonly [number, number, number],
  headDim: number,
  numHeads: number,
): RopeTables {
  const [gf, gh, gw] = grid;
  const [wf, wh, ww] = ropeSplit(headDim);
  for (const [name, n] of [
    ['frames', gf],
    ['height', gh],
    ['width', gw],
  ] as const) {
    if (n > ROPE_MAX_POSITIONS) {
      // Wan precomputes 1024 positions per axis; beyond them its tables run out.
      throw new InvalidArgumentError(
        `rope: the ${name} axis has ${n} patches; the 3-D RoPE covers at most ${ROPE_MAX_POSITIONS} per axis`,
      );
    }
  }
  const n = gf * gh * gw;
  const dim = headDim * numHeads;
  const cos = new Float32Array(n * dim);
  const sin = new Float32Array(n * dim);
  const head = new Float64Array(headDim / 2);
  let t = 0;
  for (let f = 0; f < gf; f++) {
    const af = partAngles(wf, f);
    for (let h = 0; h < gh; h++) {
      const ah = partAngles(wh, h);
      for (let w = 0; w < gw; w++) {
        const aw = partAngles(ww, w);
        head.set(af, 0);
        head.set(ah, af.length);
        head.set(aw, af.length + ah.length);
        const base = t * dim;
        for (let p = 0; p < headDim / 2; p++) {
          const c = Math.cos(head[p] as number);
          const s = Math.sin(head[p] as number);
          for (let k = 0; k < numHeads; k++) {
            const i = base + k * headDim + 2 * p;
            cos[i] = c;
            cos[i + 1] = c;
            sin[i] = -s;
            sin[i + 1] = s;
          }
        }
        t++;
      }
    }
  }
  const swap = new Float32Array(headDim * headDim);
  for (let p = 0; p < headDim; p += 2) {
    swap[(p + 1) * headDim + p] = 1;
    swap[p * headDim + p + 1] = 1;
  }
  return {
    grid: [gf, gh, gw],
    cos: tf.tensor2d(cos, [n, dim]),
    sin: tf.tensor2d(sin, [n, dim]),
    swap: tf.tensor2d(swap, [headDim, headDim]),
  };
}

/** How the pair swap is computed: a product with the permutation, or a reverse of [..., 2] pairs. */
export type PairSwap = 'matmul' | 'reverse';

/** 'matmul' on the CPU backends (wasm, cpu), whose Reverse kernels are slow; 'reverse' elsewhere. */
export function defaultPairSwap(): PairSwap {
  const backend = tf.getBackend();
  return backend === 'wasm' || backend === 'cpu' ? 'matmul' : 'reverse';
}

function swapPairs(x: tf.Tensor3D, swap: tf.Tensor2D, how: PairSwap): tf.Tensor {
  const [b, n, dim] = x.shape;
  if (how === 'matmul') {
    const headDim = swap.shape[0];
    return tf.reshape(matMul(tf.reshape(x, [(b * n * dim) / headDim, headDim]), swap), [b, n, dim]);
  }
  return tf.reshape(tf.reverse(tf.reshape(x, [b, n, dim / 2, 2]), -1), [b, n, dim]);
}

type GradFn = (...args: unknown[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor) => tf.Tensor[] };

/**
 * Rotates x [B, N, dim] (dim = heads * headDim, pairs interleaved within each head) by the tables.
 * A rotation is linear in x: rope(x) = x C + swap(x) S, so its gradient is dy C + swap(dy S) (the swap
 * is its own transpose); nothing but the constant tables is kept for the backward pass.
 */
export function applyRope(
  x: tf.Tensor3D,
  tables: RopeTables,
  how: PairSwap = defaultPairSwap(),
): tf.Tensor3D {
  const rotate = tf.customGrad(((input: tf.Tensor3D) => ({
    value: tf.add(tf.mul(input, tables.cos), tf.mul(swapPairs(input, tables.swap, how), tables.sin)),
    gradFunc: (dy: tf.Tensor) => [
      tf.add(tf.mul(dy, tables.cos), swapPairs(tf.mul(dy, tables.sin) as tf.Tensor3D, tables.swap, how)),
    ],
  })) as unknown as GradFn) as unknown as (input: tf.Tensor3D) => tf.Tensor3D;
  return rotate(x);
}
