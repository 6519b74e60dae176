import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteInRange, InvalidArgumentError } from '../errors.js';
import type { GradientMap } from './grads.js';
import { gradientEntries, NonFiniteGradientError } from './grads.js';

/** Options of clipByGlobalNorm, as in `torch.nn.utils.clip_grad_norm_`. */
export interface ClipByGlobalNormOptions {
  /** 2 (default, the L2 norm of all gradients concatenated) or 'inf' (largest absolute entry). */
  normType?: 2 | 'inf';
  /** Throw NonFiniteGradientError when the total norm is NaN or Inf (torch's `error_if_nonfinite`). Default false. */
  errorIfNonfinite?: boolean;
}

/** The clipped gradients (new tensors, the caller's to dispose) and the total norm before clipping. */
export interface ClipByGlobalNormResult {
  grads: Record<string, tf.Tensor>;
  /** Norm of all gradients together, before clipping, read back as a number (log it; NaN/Inf means trouble). */
  totalNorm: number;
}

/**
 * Scales all gradients by one factor so that their joint norm is at most `maxNorm`, computing what
 * `torch.nn.utils.clip_grad_norm_` computes: total = ‖[‖g₁‖, ‖g₂‖, …]‖ in float32, coefficient
 * min(maxNorm / (total + 1e-6), 1), every gradient multiplied by it (also when it is 1, as torch does,
 * so the returned tensors are always new). tfjs has no global-norm clipping; `tf.clipByValue` is
 * per-element and changes the gradient's direction.
 *
 * The input tensors are neither modified nor disposed. With a non-finite total norm (and no
 * `errorIfNonfinite`) the result is NaN, as in torch: check `totalNorm`, or let AdamW's non-finite
 * policy catch it. One scalar is read from the device (the norm as a number).
 */
export function clipByGlobalNorm(
  grads: GradientMap,
  maxNorm: number,
  options: ClipByGlobalNormOptions = {},
): ClipByGlobalNormResult {
  assertFiniteInRange('clipByGlobalNorm: maxNorm', maxNorm, 0);
  const normType = options.normType ?? 2;
  if (normType !== 2 && normType !== 'inf') {
    throw new InvalidArgumentError(
      `clipByGlobalNorm: normType: expected 2 or 'inf', got ${String(normType)}`,
    );
  }
  const entries = gradientEntries(grads, 'clipByGlobalNorm');
  if (entries.length === 0) return { grads: {}, totalNorm: 0 };
  for (const [name, g] of entries) {
    if (g.dtype !== 'float32') {
      throw new InvalidArgumentError(
        `clipByGlobalNorm: gradient for '${name}' is ${g.dtype}; expected float32`,
      );
    }
  }
  const [total, ...clipped] = tf.tidy(() => {
    let total: tf.Tensor;
    if (normType === 'inf') {
      const norms = entries.map(([, g]) => (g.size === 0 ? tf.scalar(0) : tf.max(tf.abs(g))));
      total = norms.length === 1 ? (norms[0] as tf.Tensor) : tf.max(tf.stack(norms));
    } else {
      const norms = entries.map(([, g]) => tf.sqrt(tf.sum(tf.mul(g, g))));
      const stacked = tf.stack(norms);
      total = tf.sqrt(tf.sum(tf.mul(stacked, stacked)));
    }
    const coef = tf.minimum(tf.div(maxNorm, tf.add(total, 1e-6)), 1);
    return [total, ...entries.map(([, g]) => tf.mul(g, coef))];
  });
  const totalNorm = (total as tf.Tensor).dataSync()[0] as number;
  (total as tf.Tensor).dispose();
  if (options.errorIfNonfinite && !Number.isFinite(totalNorm)) {
    tf.dispose(clipped);
    const names = entries.map(([n]) => n);
    throw new NonFiniteGradientError(
      `clipByGlobalNorm: the total ${normType === 'inf' ? 'inf' : 'L2'} norm of the gradients is ${totalNorm}, so they cannot be clipped`,
      names,
    );
  }
  const out: Record<string, tf.Tensor> = {};
  entries.forEach(([name], i) => {
    out[name] = clipped[i] as tf.Tensor;
  });
  return { grads: out, totalNorm };
}
