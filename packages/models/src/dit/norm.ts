/**
 * The two normalisations of the Wan DiT, over the last axis, in float32:
 * - LayerNorm (WanLayerNorm): eps 1e-6, non-affine except norm3 before cross-attention and img_emb's;
 * - RMSNorm (WanRMSNorm) on q and k, over the full width (all heads at once), with a learned scale.
 *
 * Each has its own gradient (tf.customGrad) instead of tfjs's op-by-op autodiff: the tape then keeps the
 * normalised output and the per-row scale instead of every intermediate, and the backward pass is a
 * handful of kernels (the closed forms below). Matters on wasm, where every tensor the tape saves is a copy.
 */
import * as tf from '@tensorflow/tfjs-core';

type GradFn = (...args: unknown[]) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
};

/** Sum over every axis but the last: the gradient of a [D] parameter broadcast over [..., D]. */
function sumToLast(t: tf.Tensor): tf.Tensor {
  return t.rank === 1 ? t : tf.sum(tf.reshape(t, [-1, t.shape[t.rank - 1] as number]), 0);
}

/** y = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased variance, as torch). */
function normalise(x: tf.Tensor, eps: number): { y: tf.Tensor; rstd: tf.Tensor } {
  const axis = x.rank - 1;
  const centred = tf.sub(x, tf.mean(x, axis, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), eps));
  return { y: tf.mul(centred, rstd), rstd };
}

/** dL/dx of y = normalise(x) given g = dL/dy: rstd * (g - mean(g) - y * mean(g * y)). */
function normaliseGrad(g: tf.Tensor, y: tf.Tensor, rstd: tf.Tensor): tf.Tensor {
  const axis = y.rank - 1;
  return tf.mul(
    rstd,
    tf.sub(tf.sub(g, tf.mean(g, axis, true)), tf.mul(y, tf.mean(tf.mul(g, y), axis, true))),
  );
}

function layerNormFn(eps: number): (x: tf.Tensor) => tf.Tensor {
  return tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const { y, rstd } = normalise(x, eps);
    save([y, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [sy, sr]: tf.Tensor[]) => [
        normaliseGrad(dy, sy as tf.Tensor, sr as tf.Tensor),
      ],
    };
  }) as unknown as GradFn) as unknown as (x: tf.Tensor) => tf.Tensor;
}

function affineLayerNormFn(eps: number): (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  return tf.customGrad(((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const { y, rstd } = normalise(x, eps);
    save([y, rstd, w]);
    return {
      value: tf.add(tf.mul(y, w), b),
      gradFunc: (dy: tf.Tensor, [sy, sr, sw]: tf.Tensor[]) => [
        normaliseGrad(tf.mul(dy, sw as tf.Tensor), sy as tf.Tensor, sr as tf.Tensor),
        sumToLast(tf.mul(dy, sy as tf.Tensor)),
        sumToLast(dy),
      ],
    };
  }) as unknown as GradFn) as unknown as (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;
}

function rmsNormFn(eps: number): (x: tf.Tensor, w: tf.Tensor) => tf.Tensor {
  return tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    const axis = x.rank - 1;
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(x), axis, true), eps));
    const y = tf.mul(x, rstd);
    save([y, rstd, w]);
    return {
      value: tf.mul(y, w),
      gradFunc: (dy: tf.Tensor, [sy, sr, sw]: tf.Tensor[]) => {
        const g = tf.mul(dy, sw as tf.Tensor);
        const y2 = sy as tf.Tensor;
        // d/dx of x * rstd(x): rstd * (g - y * mean(g * y)).
        const dx = tf.mul(sr as tf.Tensor, tf.sub(g, tf.mul(y2, tf.mean(tf.mul(g, y2), axis, true))));
        return [dx, sumToLast(tf.mul(dy, y2))];
      },
    };
  }) as unknown as GradFn) as unknown as (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
}

// One customGrad closure per eps (eps is a constant of the model, not an input).
const cache = {
  ln: new Map<number, ReturnType<typeof layerNormFn>>(),
  aln: new Map<number, ReturnType<typeof affineLayerNormFn>>(),
  rms: new Map<number, ReturnType<typeof rmsNormFn>>(),
};

function cached<T>(map: Map<number, T>, eps: number, make: (eps: number) => T): T {
  let f = map.get(eps);
  if (f === undefined) {
    f = make(eps);
    map.set(eps, f);
  }
  return f;
}

/** (x - mean) / sqrt(var + eps) [* weight + bias] over the last axis (biased variance, as torch). */
export function layerNorm(x: tf.Tensor, eps: number, weight?: tf.Tensor1D, bias?: tf.Tensor1D): tf.Tensor {
  if (weight === undefined && bias === undefined) return cached(cache.ln, eps, layerNormFn)(x);
  return tf.tidy(() =>
    cached(cache.aln, eps, affineLayerNormFn)(
      x,
      weight ?? tf.ones([x.shape[x.rank - 1] as number]),
      bias ?? tf.zeros([x.shape[x.rank - 1] as number]),
    ),
  );
}

/** x / sqrt(mean(x^2) + eps) * weight over the last axis. */
export function rmsNorm(x: tf.Tensor, eps: number, weight: tf.Tensor1D): tf.Tensor {
  return cached(cache.rms, eps, rmsNormFn)(x, weight);
}
