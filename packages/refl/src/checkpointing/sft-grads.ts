/**
 * The SFT term's tape, with or without per-block gradient checkpointing. Its forward pass is a full
 * generator forward like the taped PRFL step's, so checkpointing only the reward step would just move
 * the memory peak here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Conditioning, LatentVideo, VelocityModel } from '@prfl/tensor';
import { flowMatchingLossPerSample, type SftNoiseLevel } from '../sft-loss.js';
import { type CheckpointingMode, velocityGrads } from './velocity-grads.js';

export interface SftGradsArgs {
  model: VelocityModel;
  x0: LatentVideo;
  eps: LatentVideo;
  levels: readonly SftNoiseLevel[];
  conditioning: Conditioning;
  /** The term from the per-video squared errors [B] (weighting, sftWeight, clamp). */
  loss: (perSample: tf.Tensor1D) => tf.Scalar;
  variables: readonly tf.Variable[];
  checkpointing: CheckpointingMode;
}

/** The SFT term and its gradient by variable name, as `tf.variableGrads` returns them. */
export function sftGrads(args: SftGradsArgs): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const { model, x0, eps, levels, conditioning, loss, variables, checkpointing } = args;
  if (checkpointing === null) {
    return tf.variableGrads(
      () => loss(flowMatchingLossPerSample(model, x0, eps, levels, conditioning)),
      [...variables],
    );
  }
  // x_sigma does not depend on the weights: computed once, outside any tape, as flowMatchingLossPerSample does.
  const xSigma = tf.tidy(() => {
    const s = tf.reshape(tf.tensor1d(levels.map((l) => l.sigma)), [x0.shape[0], 1, 1, 1, 1]);
    return tf.add(tf.mul(tf.sub(1, s), x0), tf.mul(s, eps)) as LatentVideo;
  });
  try {
    return velocityGrads({
      model,
      x: xSigma,
      timesteps: levels.map((l) => l.timestep),
      conditioning,
      loss: (v) => loss(tf.mean(tf.square(tf.sub(v, tf.sub(eps, x0))), [1, 2, 3, 4]) as tf.Tensor1D),
      variables,
      checkpointing,
    });
  } finally {
    xSigma.dispose();
  }
}
