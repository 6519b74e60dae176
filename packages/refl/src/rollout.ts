/**
 * The untaped part of the reward step (docs/method.md section 5): from pure noise, steps 0..k-1 of the
 * schedule with no gradient, each model output disposed as soon as the scheduler has used it. What is
 * returned, x_k and the solver state entering step k (UniPC's history of earlier outputs), is a constant
 * of the taped step that follows.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  type LatentVideo,
  type Schedule,
  type Scheduler,
  stepIndex,
  type Timestep,
  type VelocityModel,
} from '@prfl/tensor';

export interface RolloutResult<S> {
  /** x_k, the sample entering step k. */
  sample: LatentVideo;
  /** The solver state entering step k; free it with scheduler.disposeState. */
  state: S;
}

/** The same timestep for every batch element. */
export function batchTimesteps(t: Timestep, batchSize: number): Timestep[] {
  return Array.from({ length: batchSize }, () => t);
}

/**
 * Runs steps 0..k-1 from `noise` (not disposed) without a tape. With k = 0 the sample is a copy of the
 * noise and the state the scheduler's initial one. Conditional branch only, no guidance (the reference's
 * PRFL rollout).
 */
export function rolloutTo<S>(
  model: VelocityModel,
  scheduler: Scheduler<S>,
  schedule: Schedule,
  noise: LatentVideo,
  conditioning: Conditioning,
  k: number,
): RolloutResult<S> {
  const b = noise.shape[0];
  let x = tf.clone(noise);
  let state = scheduler.initialState(schedule);
  try {
    for (let i = 0; i < k; i++) {
      const t = schedule.timesteps[i] as Timestep;
      const v = tf.tidy(() => model.predictVelocity(x, batchTimesteps(t, b), conditioning));
      const next = scheduler.step({
        schedule,
        state,
        index: stepIndex(i, schedule.numSteps),
        sample: x,
        modelOutput: v,
      });
      v.dispose();
      x.dispose();
      scheduler.disposeState(state);
      x = next.sample;
      state = next.state;
    }
  } catch (e) {
    x.dispose();
    scheduler.disposeState(state);
    throw e;
  }
  return { sample: x, state };
}
