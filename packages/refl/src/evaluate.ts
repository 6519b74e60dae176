/**
 * How good a generator is by a frozen latent reward, the way PRFL trains it (docs/method.md section 5):
 * sample the whole chain from given noise with no gradient and score the sample at chosen steps, x_i at
 * t_i (the final clean sample at timestep 0). With held-out noise and prompts this is the number a PRFL
 * run should raise.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  InvalidArgumentError,
  type LatentRewardModel,
  type LatentVideo,
  type Schedule,
  type Scheduler,
  stepIndex,
  type Timestep,
  timestep,
  type VelocityModel,
} from '@prfl/tensor';
import { batchTimesteps } from './rollout.js';

export interface ProcessRewardEvalArgs {
  generator: VelocityModel;
  reward: LatentRewardModel;
  scheduler: Scheduler<unknown>;
  schedule: Schedule;
  /** Starting noise [B, F, H, W, C] (not disposed). */
  noise: LatentVideo;
  conditioning: Conditioning;
  /** Sample indices to score, 1..N (x_i, entering step i; N is the final sample). Default all. */
  at?: readonly number[];
}

export interface ProcessRewardEvaluation {
  /** Per scored index: the timestep the reward read, sigma, and the batch mean of sigmoid(r). */
  byStep: Array<{ index: number; timestep: number; sigma: number; mean: number }>;
  /** Mean of `byStep`'s means. */
  mean: number;
}

/** Samples the chain once and scores it at `at`; no tape, no tensor left behind. */
export function evaluateProcessReward(args: ProcessRewardEvalArgs): ProcessRewardEvaluation {
  const { generator, reward, scheduler, schedule, noise, conditioning } = args;
  const n = schedule.numSteps;
  const at = new Set(args.at ?? Array.from({ length: n }, (_, i) => i + 1));
  for (const i of at) {
    if (!Number.isInteger(i) || i < 1 || i > n) {
      throw new InvalidArgumentError(`at: expected sample indices in [1, ${n}], got ${String(i)}`);
    }
  }
  const b = noise.shape[0];
  const byStep: ProcessRewardEvaluation['byStep'] = [];
  let x = tf.clone(noise);
  let state = scheduler.initialState(schedule);
  try {
    for (let i = 0; i < n; i++) {
      const t = schedule.timesteps[i] as Timestep;
      const v = tf.tidy(() => generator.predictVelocity(x, batchTimesteps(t, b), conditioning));
      const next = scheduler.step({ schedule, state, index: stepIndex(i, n), sample: x, modelOutput: v });
      v.dispose();
      x.dispose();
      scheduler.disposeState(state);
      x = next.sample;
      state = next.state;
      if (at.has(i + 1)) {
        const tNext = i + 1 < n ? (schedule.timesteps[i + 1] as Timestep) : timestep(0);
        const mean = tf.tidy(() =>
          tf.mean(tf.sigmoid(reward.score(x, batchTimesteps(tNext, b), conditioning))),
        );
        byStep.push({
          index: i + 1,
          timestep: tNext,
          sigma: schedule.sigmas[i + 1] as number,
          mean: mean.dataSync()[0] as number,
        });
        mean.dispose();
      }
    }
  } finally {
    x.dispose();
    scheduler.disposeState(state);
  }
  return { byStep, mean: byStep.reduce((a, s) => a + s.mean, 0) / Math.max(1, byStep.length) };
}
