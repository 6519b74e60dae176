/** Early pruning with a process reward: which candidates survive, what is gathered, what compute is saved. */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertNoLeak,
  backendsUnderTest,
  type Conditioning,
  initBackend,
  type LatentRewardModel,
  type LatentVideo,
  shutdownBackend,
  type Timestep,
  timestep,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneByReward, sampleWithEarlyPruning, selectByReward } from '../src/index.js';

/** Reward = mean of the latent (so a candidate's value is its score); records timesteps. */
function meanReward(seen: number[] = []): LatentRewardModel {
  return {
    namedVariables: () => new Map(),
    score(x: LatentVideo, t: readonly Timestep[], _c: Conditioning) {
      seen.push(...t);
      return tf.tidy(() => tf.mean(tf.reshape(x, [x.shape[0], -1]), 1) as tf.Tensor1D);
    },
  };
}

/** Candidates whose every element equals `values[i]`, and text rows tagged with i. */
function candidates(values: number[]): { latents: LatentVideo; conditioning: Conditioning } {
  const n = values.length;
  return {
    latents: tf.tidy(() =>
      tf.mul(tf.reshape(tf.tensor1d(values), [n, 1, 1, 1, 1]), tf.ones([n, 2, 2, 2, 3])),
    ) as LatentVideo,
    conditioning: {
      text: tf.tidy(() => tf.mul(tf.reshape(tf.range(0, n), [n, 1, 1]), tf.ones([n, 2, 4]))) as tf.Tensor3D,
    },
  };
}

describe.each(backendsUnderTest())('process reward pruning on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('keeps the top k (original order) with their latents and conditioning', async () => {
    const c = candidates([0.1, 3, -2, 1, 2.5]);
    const r = pruneByReward({
      reward: meanReward(),
      latents: c.latents,
      timesteps: timestep(700),
      conditioning: c.conditioning,
      keep: { topK: 2 },
    });
    expect(r.kept).toEqual([1, 4]);
    expect(r.dropped).toEqual([0, 2, 3]);
    expect(r.logits.map((l) => Number(l.toFixed(4)))).toEqual([0.1, 3, -2, 1, 2.5]);
    expect(r.probabilities[1]).toBeCloseTo(1 / (1 + Math.exp(-3)), 5);
    expect(r.latents.shape).toEqual([2, 2, 2, 2, 3]);
    expect((await r.latents.data())[0]).toBeCloseTo(3, 5);
    expect(Array.from(await r.conditioning.text.data()).filter((_, i) => i % 8 === 0)).toEqual([1, 4]);
    tf.dispose([c.latents, c.conditioning.text, r.latents, r.conditioning.text]);
  });

  it('threshold rule keeps probabilities >= threshold, and at least minKeep', () => {
    expect(selectByReward([2, -1, 0.5, -3], { threshold: 0.6 })).toEqual([0, 2]);
    expect(selectByReward([-2, -1, -0.5, -3], { threshold: 0.6 })).toEqual([2]);
    expect(selectByReward([-2, -1, -0.5, -3], { threshold: 0.6, minKeep: 2 })).toEqual([1, 2]);
    expect(selectByReward([1, 1, 1], { topK: 2 })).toEqual([0, 1]);
    expect(() => selectByReward([1], { topK: 0 })).toThrow(/keep\.topK/);
    expect(() => selectByReward([1], { threshold: 2 })).toThrow(/keep\.threshold/);
  });

  it('a sampling loop that prunes twice runs only the survivors and reports the evaluations saved', async () => {
    // 6 candidates; each step adds the candidate's index / 10 to every element, so higher indices lead.
    const n = 6;
    const steps = 10;
    const initial = tf.zeros([n, 2, 2, 2, 3]) as LatentVideo;
    const text = tf.zeros([n, 1, 4]) as tf.Tensor3D;
    const live: number[][] = [];
    const seen: number[] = [];
    const result = await sampleWithEarlyPruning({
      reward: meanReward(seen),
      initial,
      conditioning: { text },
      numSteps: steps,
      timestepAfter: (k) => timestep(1000 - k * 100),
      pruneAfter: [2, 5],
      keep: { topK: 3 },
      evaluationsPerStep: 2,
      step: ({ sample, candidates, conditioning }) => {
        live.push([...candidates]);
        expect(conditioning.text.shape[0]).toBe(candidates.length);
        return tf.tidy(() =>
          tf.add(
            sample,
            tf.reshape(tf.tensor1d(candidates.map((c) => c / 10)), [candidates.length, 1, 1, 1, 1]),
          ),
        ) as LatentVideo;
      },
    });
    expect(live[0]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(live[2]).toEqual([3, 4, 5]);
    expect(live[5]).toEqual([3, 4, 5]);
    expect(result.candidates).toEqual([3, 4, 5]);
    expect(result.decisions.map((d) => [d.afterStep, d.timestep, d.kept])).toEqual([
      [2, 800, [3, 4, 5]],
      [5, 500, [3, 4, 5]],
    ]);
    expect(seen).toEqual([800, 800, 800, 800, 800, 800, 500, 500, 500]);
    // 6 candidates x 2 steps + 3 x 8 steps = 36 candidate-steps instead of 60.
    expect(result.compute).toEqual({
      candidateSteps: 36,
      candidateStepsWithoutPruning: 60,
      evaluations: 72,
      evaluationsWithoutPruning: 120,
      evaluationsSaved: 48,
      fractionSaved: 0.4,
      rewardEvaluations: 9,
    });
    expect(result.samples.shape).toEqual([3, 2, 2, 2, 3]);
    expect((await result.samples.data())[0]).toBeCloseTo(0.3 * steps, 4);
    expect(initial.isDisposed).toBe(false);
    // No tensor is left behind but the result.
    await assertNoLeak(
      async () => {
        const r = await sampleWithEarlyPruning({
          reward: meanReward(),
          initial,
          conditioning: { text },
          numSteps: 4,
          timestepAfter: () => timestep(500),
          pruneAfter: 1,
          keep: { threshold: 0.5 },
          step: ({ sample }) => tf.add(sample, 1) as LatentVideo,
        });
        r.samples.dispose();
      },
      { label: 'sampleWithEarlyPruning' },
    );
    tf.dispose([initial, text, result.samples]);
  });

  it('rejects bad pruning points and wrong step results', async () => {
    const initial = tf.zeros([2, 1, 1, 1, 1]) as LatentVideo;
    const text = tf.zeros([2, 1, 1]) as tf.Tensor3D;
    const base = {
      reward: meanReward(),
      initial,
      conditioning: { text },
      numSteps: 3,
      timestepAfter: () => timestep(1),
      keep: { topK: 1 },
    };
    await expect(
      sampleWithEarlyPruning({ ...base, pruneAfter: 3, step: ({ sample }) => tf.clone(sample) }),
    ).rejects.toThrow(/pruneAfter: expected increasing step counts in \[0, 2\]/);
    await expect(
      sampleWithEarlyPruning({
        ...base,
        pruneAfter: 0,
        step: () => tf.zeros([2, 1, 1, 1, 1]) as LatentVideo,
      }),
    ).rejects.toThrow(/step\(\) returned 2 samples for 1 live candidates/);
    tf.dispose([initial, text]);
  });
});
