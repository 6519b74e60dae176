/**
 * Classifier-free guidance: v = v_uncond + g (v_cond - v_uncond), with the conditional and
 * unconditional (negative prompt) branches run as one batch of 2B through the model, as one forward.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertFiniteInRange,
  type Conditioning,
  formatShape,
  InvalidArgumentError,
  type LatentVideo,
  type TimestepOptions,
  type TimestepsLike,
  type VelocityModel,
  validateTimesteps,
} from '@prfl/tensor';

/** v_uncond + scale (v_cond - v_uncond). */
export function classifierFreeGuidance(vUncond: tf.Tensor, vCond: tf.Tensor, scale: number): tf.Tensor {
  assertFiniteInRange('guidanceScale', scale, 0);
  return tf.tidy(() => tf.add(vUncond, tf.mul(tf.sub(vCond, vUncond), scale)));
}

function padRows(t: tf.Tensor3D, l: number): tf.Tensor3D {
  return t.shape[1] === l
    ? t
    : tf.pad(t, [
        [0, 0],
        [0, l - t.shape[1]],
        [0, 0],
      ]);
}

function maskOf(c: Conditioning, l: number): tf.Tensor2D {
  const [b, lc] = c.text.shape;
  const m = c.textMask ?? tf.ones([b, lc]);
  return lc === l
    ? (m as tf.Tensor2D)
    : tf.pad(m as tf.Tensor2D, [
        [0, 0],
        [0, l - lc],
      ]);
}

/**
 * One conditioning of batch 2B from the conditional and the unconditional ones (each batch B): texts
 * zero-padded to the longer length (with masks that exclude the padding when either side has a mask),
 * the image condition and image tokens of the unconditional branch taken from the conditional one when
 * it has none (Wan's i2v gives both branches the same first frame and CLIP tokens). New tensors.
 */
export function batchConditioning(cond: Conditioning, uncond: Conditioning): Conditioning {
  const b = cond.text.shape[0];
  if (uncond.text.shape[0] !== b || uncond.text.shape[2] !== cond.text.shape[2]) {
    throw new InvalidArgumentError(
      `negative conditioning: text must be [${b}, L, ${cond.text.shape[2]}] like the conditioning's, got ${formatShape(uncond.text.shape)}`,
    );
  }
  return tf.tidy(() => {
    const l = Math.max(cond.text.shape[1], uncond.text.shape[1]);
    const out: Conditioning = {
      text: tf.concat([padRows(cond.text, l), padRows(uncond.text, l)], 0) as tf.Tensor3D,
    };
    if (
      cond.textMask !== undefined ||
      uncond.textMask !== undefined ||
      cond.text.shape[1] !== uncond.text.shape[1]
    ) {
      out.textMask = tf.concat([maskOf(cond, l), maskOf(uncond, l)], 0) as tf.Tensor2D;
    }
    const ci = cond.image;
    const ui = uncond.image ?? ci;
    if (ci !== undefined || ui !== undefined) {
      if (ci === undefined || ui === undefined) {
        throw new InvalidArgumentError(
          'negative conditioning: has an image condition but the conditioning has none',
        );
      }
      out.image = { latent: tf.concat([ci.latent, ui.latent], 0) as LatentVideo };
      const ct = ci.tokens;
      const ut = ui.tokens ?? ct;
      if (ct !== undefined && ut !== undefined) out.image.tokens = tf.concat([ct, ut], 0) as tf.Tensor3D;
    }
    return out as unknown as tf.TensorContainer;
  }) as unknown as Conditioning;
}

/** Splits [2B, ...] into its two halves along the batch (a rank-2 split, fast on every backend). */
function halves(v: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const b2 = v.shape[0] as number;
  const rest = v.shape.slice(1);
  const [a, c] = tf.split(tf.reshape(v, [2, -1]), 2, 0) as [tf.Tensor, tf.Tensor];
  return [tf.reshape(a, [b2 / 2, ...rest]), tf.reshape(c, [b2 / 2, ...rest])];
}

/**
 * The guided velocity for x [B, ...] at one timestep per batch element (any form `validateTimesteps`
 * takes). `batched` is the 2B conditioning of `batchConditioning` (conditional first); without it, or
 * with scale 1, one conditional forward. `options` go to the model with the timesteps.
 */
export function guidedVelocity(
  model: VelocityModel,
  x: LatentVideo,
  timesteps: TimestepsLike,
  conditioning: Conditioning,
  batched: Conditioning | undefined,
  scale: number,
  options: TimestepOptions = {},
): LatentVideo {
  // Checked here too: the model may be any VelocityModel, and the guided batch repeats the timesteps.
  const ts = validateTimesteps('timesteps', timesteps, x.shape[0], options);
  if (batched === undefined || scale === 1) return model.predictVelocity(x, ts, conditioning, options);
  return tf.tidy(() => {
    const v = model.predictVelocity(tf.concat([x, x], 0) as LatentVideo, [...ts, ...ts], batched, options);
    if (v.shape[0] !== 2 * x.shape[0]) {
      throw new InvalidArgumentError(
        `the model returned a velocity ${formatShape(v.shape)} for a batch of ${2 * x.shape[0]}`,
      );
    }
    const [vCond, vUncond] = halves(v);
    return classifierFreeGuidance(vUncond, vCond, scale) as LatentVideo;
  });
}
