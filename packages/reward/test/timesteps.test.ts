/**
 * The reward side of the timestep check (@prfl/tensor's validateTimesteps): PAVRM's score and features,
 * the toy backbone, the pixel reward and pruning take every form of timesteps, refuse sigmas passed in
 * their place, and honour the explicit opt-out (passed through to the backbone).
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, initBackend, shutdownBackend, type Timestep, timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeBatch, disposeConditioning, PixelVideoReward, pruneByReward } from '../src/index.js';
import { tinyBatch, tinyReward } from './helpers.js';

const SIGMA_LIKE =
  /timesteps look like sigmas: got \[0\.5, 0\.5\]; timesteps are sigma \* 1000 in \[0, 1000\]/;

describe.each(backendsUnderTest())('timesteps entering the reward on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('score takes an array, a Float32Array, a tensor or one number, with the same logits', async () => {
    const { backbone, reward } = tinyReward(2);
    const batch = tinyBatch(2);
    const c = batch.conditioning;
    const want = await reward.score(batch.latents, [timestep(400), timestep(400)], c).data();
    const asTensor = tf.tensor1d([400, 400]);
    for (const ts of [new Float32Array([400, 400]), new Int32Array([400, 400]), asTensor, timestep(400)]) {
      const got = reward.score(batch.latents, ts, c);
      expect(Array.from(await got.data())).toEqual(Array.from(want));
      got.dispose();
    }
    asTensor.dispose();
    expect(() => reward.score(batch.latents, new Float32Array([400]), c)).toThrow(
      /timesteps: expected 2 timesteps \(one per batch element\), got 1 \(a Float32Array\)/,
    );
    disposeBatch(batch);
    reward.dispose();
    backbone.dispose();
  });

  it('refuses sigmas as timesteps in score, probability, features and the backbone; the opt-out reaches the backbone', () => {
    const { backbone, reward } = tinyReward(2);
    const batch = tinyBatch(2);
    const c = batch.conditioning;
    const sigmas = [0.5, 0.5] as Timestep[];
    expect(() => reward.score(batch.latents, sigmas, c)).toThrow(SIGMA_LIKE);
    expect(() => reward.probability(batch.latents, sigmas, c)).toThrow(SIGMA_LIKE);
    expect(() => reward.features(batch.latents, sigmas, c)).toThrow(SIGMA_LIKE);
    expect(() => backbone.features(batch.latents, sigmas, c)).toThrow(SIGMA_LIKE);
    const opt = { allowSmallTimesteps: true };
    const logits = reward.score(batch.latents, sigmas, c, opt);
    expect(logits.shape).toEqual([2]);
    // Clean latents (sigma 0, timestep 0) are not mistaken for sigmas.
    const clean = reward.score(batch.latents, [timestep(0), timestep(0)], c);
    tf.dispose([logits, clean]);
    disposeBatch(batch);
    reward.dispose();
    backbone.dispose();
  });

  it('the pixel reward and pruning check timesteps the same way', () => {
    const pixel = new PixelVideoReward({ inChannels: 4, channels: [4], strides: [[1, 2, 2]], hidden: 4 });
    const batch = tinyBatch(2);
    expect(() => pixel.score(batch.latents, [0.5, 0.5] as Timestep[])).toThrow(SIGMA_LIKE);
    const ok = pixel.score(batch.latents, new Float32Array([0, 0]));
    const { backbone, reward } = tinyReward(2);
    const base = { reward, latents: batch.latents, conditioning: batch.conditioning, keep: { topK: 1 } };
    expect(() => pruneByReward({ ...base, timesteps: 0.5 as Timestep })).toThrow(SIGMA_LIKE);
    const pruned = pruneByReward({ ...base, timesteps: new Float32Array([700, 700]) });
    expect(pruned.kept.length).toBe(1);
    tf.dispose([ok, pruned.latents]);
    disposeConditioning(pruned.conditioning);
    disposeBatch(batch);
    pixel.dispose();
    reward.dispose();
    backbone.dispose();
  });
});
