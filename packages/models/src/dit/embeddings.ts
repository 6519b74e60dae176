/**
 * Patch embedding layout and the timestep sinusoid of the Wan DiT.
 *
 * Wan embeds patches with a Conv3d whose kernel equals its stride. That is a linear map of each
 * non-overlapping [pt, ph, pw, C] patch, so we cut the latent into patches (reshapes and at most two
 * rank-5 transposes) and run one matMul: the same numbers, without a conv kernel (and its missing wasm
 * gradients). The patch vector is ordered (t, h, w, c), the order of tfjs's conv3d filter
 * [t, h, w, in, out] flattened, so the weight converts from Wan's [out, in, t, h, w] by a transpose.
 * The head's output uses the same (t, h, w, c) order, which is Wan's unpatchify order ('fhwpqrc').
 */
import * as tf from '@tensorflow/tfjs-core';

export type PatchGrid = readonly [number, number, number];

/** [B, F, H, W, C] -> tokens [B, F/pt * H/ph * W/pw, pt*ph*pw*C] in (f, h, w) order. */
export function patchify(x: tf.Tensor5D, patch: readonly [number, number, number]): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, f, h, w, c] = x.shape;
    const [pt, ph, pw] = patch;
    const gf = f / pt;
    const gh = h / ph;
    const gw = w / pw;
    let y: tf.Tensor = x;
    if (ph > 1) {
      y = tf.transpose(tf.reshape(y, [b * f, gh, ph, gw, pw * c]), [0, 1, 3, 2, 4]);
    }
    if (pt > 1) {
      y = tf.transpose(tf.reshape(y, [b, gf, pt, gh * gw, ph * pw * c]), [0, 1, 3, 2, 4]);
    }
    return tf.reshape(y, [b, gf * gh * gw, pt * ph * pw * c]);
  });
}

/** Inverse of `patchify`: tokens [B, N, pt*ph*pw*C] on `grid` -> [B, F, H, W, C]. */
export function unpatchify(
  tokens: tf.Tensor3D,
  grid: PatchGrid,
  patch: readonly [number, number, number],
  channels: number,
): tf.Tensor5D {
  return tf.tidy(() => {
    const b = tokens.shape[0];
    const [gf, gh, gw] = grid;
    const [pt, ph, pw] = patch;
    const c = channels;
    let y: tf.Tensor = tokens;
    if (pt > 1) {
      y = tf.transpose(tf.reshape(y, [b, gf, gh * gw, pt, ph * pw * c]), [0, 1, 3, 2, 4]);
    }
    if (ph > 1) {
      y = tf.transpose(tf.reshape(y, [b * gf * pt, gh, gw, ph, pw * c]), [0, 1, 3, 2, 4]);
    }
    return tf.reshape(y, [b, gf * pt, gh * ph, gw * pw, c]);
  });
}

/**
 * Wan's sinusoidal_embedding_1d: [cos(t * w_j), sin(t * w_j)] with w_j = 10000^(-j / (dim/2)),
 * j = 0..dim/2-1 (cos first), computed in float64 as Wan does, returned as float32 [B, dim].
 */
export function sinusoidalEmbedding(timesteps: readonly number[], dim: number): tf.Tensor2D {
  const half = dim / 2;
  const out = new Float32Array(timesteps.length * dim);
  timesteps.forEach((t, i) => {
    for (let j = 0; j < half; j++) {
      const a = t * 10000 ** (-j / half);
      out[i * dim + j] = Math.cos(a);
      out[i * dim + half + j] = Math.sin(a);
    }
  });
  return tf.tensor2d(out, [timesteps.length, dim]);
}
