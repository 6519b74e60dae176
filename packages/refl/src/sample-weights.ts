/**
 * Reward-weighted regression (docs/method.md section 5): the SFT term's squared error of each video is
 * weighted by the frozen reward's score of that clean video, so good videos pull harder. The weights
 * are constants (computed outside any tape).
 *
 * - 'reward-sigmoid': w = sigmoid(r);
 * - 'reward-softmax': w = B * softmax(r / temperature) over the batch (mean weight 1; exp(r / T) as in
 *   classic RWR, normalised per batch).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Conditioning, type LatentRewardModel, type LatentVideo, timestep } from '@prfl/tensor';
import { batchTimesteps } from './rollout.js';
import type { PrflRun } from './run.js';

export type SftWeighting = 'uniform' | 'reward-sigmoid' | 'reward-softmax';

export const SFT_WEIGHTINGS: readonly SftWeighting[] = ['uniform', 'reward-sigmoid', 'reward-softmax'];

/**
 * The per-video weights [B] of the run's weighting, or null for 'uniform'. The reward reads the clean
 * latent at timestep 0 (a pixel reward, the decoded frames).
 */
export function sampleWeights(run: PrflRun, x0: LatentVideo, conditioning: Conditioning): tf.Tensor1D | null {
  const o = run.options;
  if (o.sftWeighting === 'uniform') return null;
  const reward = run.reward as LatentRewardModel;
  const b = x0.shape[0];
  return tf.tidy(() => {
    const input = run.readout.kind === 'pixel' ? run.readout.decoder.decode(x0) : x0;
    const r = reward.score(input, batchTimesteps(timestep(0), b), conditioning);
    if (o.sftWeighting === 'reward-sigmoid') return tf.sigmoid(r) as tf.Tensor1D;
    return tf.mul(tf.softmax(tf.div(r, o.rwrTemperature)), b) as tf.Tensor1D;
  });
}
