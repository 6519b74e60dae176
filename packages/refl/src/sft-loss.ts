/**
 * The flow-matching SFT term (docs/method.md sections 5 and 3.1): x_sigma = (1 - sigma) x0 + sigma eps, and the
 * squared error of the predicted velocity against v = eps - x0, with the reference's uniform weighting.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Conditioning, LatentVideo, Sigma, Timestep, VelocityModel } from '@prfl/tensor';

/** A training noise level: the sigma that noises x0 and the timestep value the model reads. */
export interface SftNoiseLevel {
  readonly sigma: Sigma;
  readonly timestep: Timestep;
}

/** mean over elements of each sample of (v(x_sigma, t) - (eps - x0))^2: [B], differentiable. */
export function flowMatchingLossPerSample(
  model: VelocityModel,
  x0: LatentVideo,
  eps: LatentVideo,
  levels: readonly SftNoiseLevel[],
  conditioning: Conditioning,
): tf.Tensor1D {
  return tf.tidy(() => {
    const b = x0.shape[0];
    const s = tf.reshape(tf.tensor1d(levels.map((l) => l.sigma)), [b, 1, 1, 1, 1]);
    const xSigma = tf.add(tf.mul(tf.sub(1, s), x0), tf.mul(s, eps)) as LatentVideo;
    const v = model.predictVelocity(
      xSigma,
      levels.map((l) => l.timestep),
      conditioning,
    );
    return tf.mean(tf.square(tf.sub(v, tf.sub(eps, x0))), [1, 2, 3, 4]) as tf.Tensor1D;
  });
}

/** The batch mean of `flowMatchingLossPerSample` (torch.mean over everything: samples have one size). */
export function flowMatchingLoss(
  model: VelocityModel,
  x0: LatentVideo,
  eps: LatentVideo,
  levels: readonly SftNoiseLevel[],
  conditioning: Conditioning,
): tf.Scalar {
  return tf.tidy(() => tf.mean(flowMatchingLossPerSample(model, x0, eps, levels, conditioning)) as tf.Scalar);
}
