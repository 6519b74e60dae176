/** SFT alone (pretraining), reward-weighted regression and RGB ReFL on the shared loop; trainer callbacks. */
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  type LatentVideo,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { sampleGridNoiseLevels } from '@prfl/schedulers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRgbReflTrainer,
  createRwrTrainer,
  createSftTrainer,
  flowMatchingLoss,
  flowMatchingLossPerSample,
  type PrflStepMetrics,
  PrflTrainer,
  prflRandom,
  tensorVideoSource,
} from '../src/index.js';
import {
  disposeBatch,
  TinyDecoder,
  TinyPixelReward,
  TinyReward,
  TinyVelocity,
  tinyBatch,
} from './helpers.js';

describe.each(backendsUnderTest())('methods on the PRFL loop on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  it('SFT alone pretrains a generator from scratch: the held-out flow-matching loss falls', async () => {
    // Data: a fixed pattern per video plus a little noise; the model must learn v = eps - x0.
    const g = new Generator(31);
    const pattern = tf.tensor([0.8, -0.5, 0.3, 0.1]);
    const make = (n: number) => ({
      latents: tf.tidy(() => tf.add(pattern, g.normal([n, 2, 3, 3, 4], 0, 0.1))) as LatentVideo,
      conditioning: { text: g.normal([n, 3, 4]) as tf.Tensor3D },
    });
    const train = make(32);
    const held = make(8);
    const generator = new TinyVelocity(5);
    const levels = sampleGridNoiseLevels(new Generator(1), 8, { shift: 5 });
    const eps = new Generator(2).normal([8, 2, 3, 3, 4]) as LatentVideo;
    const heldOut = () => {
      const l = flowMatchingLoss(generator, held.latents, eps, levels, held.conditioning);
      const v = l.dataSync()[0] as number;
      l.dispose();
      return v;
    };
    const before = heldOut();
    const log: PrflStepMetrics[] = [];
    const trainer = createSftTrainer(
      { generator },
      {
        lr: 3e-2,
        accumulationSteps: 1,
        textDropout: 0,
        seed: 2,
        measureMemory: false,
        onStep: (m) => log.push(m),
      },
    );
    await trainer.fit(tensorVideoSource(train), { epochs: 20, batchSize: 8, maxSteps: 80 });
    const after = heldOut();
    expect(trainer.run.reward).toBeNull();
    expect(after).toBeLessThan(0.6 * before);
    expect(log).toHaveLength(80);
    expect(log.every((m) => m.rewardLoss === 0 && m.sftLoss !== null)).toBe(true);
    trainer.dispose();
    generator.dispose();
    tf.dispose([pattern, train.latents, train.conditioning.text, held.latents, held.conditioning.text, eps]);
  });

  it('RWR weights each video by the frozen reward of its clean latent: the loss equals the weighted MSE', () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const batch = tinyBatch(12, 4);
    for (const weighting of ['reward-sigmoid', 'reward-softmax'] as const) {
      const trainer = createRwrTrainer(
        { generator, reward },
        {
          sftWeighting: weighting,
          rwrTemperature: 0.5,
          textDropout: 0,
          seed: 9,
          measureMemory: false,
          accumulationSteps: 100,
        },
      );
      const m = trainer.trainStep(batch);
      // The same draws: the run's SFT stream for seed 9.
      const random = prflRandom(9);
      const levels = sampleGridNoiseLevels(random.sft, 4, { shift: 5 });
      const eps = random.sft.normal([4, 2, 3, 3, 4]) as LatentVideo;
      const expected = tf.tidy(() => {
        const r = reward.score(batch.latents, Array(4).fill(timestep(0)));
        const w = weighting === 'reward-sigmoid' ? tf.sigmoid(r) : tf.mul(tf.softmax(tf.div(r, 0.5)), 4);
        return tf.mean(
          tf.mul(w, flowMatchingLossPerSample(generator, batch.latents, eps, levels, batch.conditioning)),
        );
      });
      expect(m.sftLoss).toBeCloseTo(expected.dataSync()[0] as number, 6);
      expect(m.sftSigmas).toEqual(levels.map((l) => l.sigma));
      expect(m.rewardLoss).toBe(0);
      tf.dispose([expected, eps]);
      trainer.dispose();
    }
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });

  it('RGB ReFL decodes x0_hat of a late step (first latent frame, or all) and raises the pixel reward', () => {
    const generator = new TinyVelocity(1);
    const decoder = new TinyDecoder();
    const reward = new TinyPixelReward();
    const batch = tinyBatch(13, 2);
    const first = createRgbReflTrainer(
      { generator, reward, decoder },
      { numSteps: 9, textDropout: 0, accumulationSteps: 1, lr: 1e-2, seed: 3 },
    );
    expect(first.run.stepRange).toEqual([5, 7]); // the last third of {0..N-2}
    const m = first.trainStep(batch);
    expect(m.k).toBeGreaterThanOrEqual(5);
    expect(decoder.lastFrames).toBe(1);
    expect(m.rewardTimestep).toBe(0);
    expect(Object.keys(m.phases)).toContain('decode');

    // Held-out: the pixel reward of the decoded clean estimate at a late step, from fresh noise.
    const g = new Generator(77);
    const noise = g.normal([4, 2, 3, 3, 4]) as LatentVideo;
    const text = g.normal([4, 3, 4]) as tf.Tensor3D;
    const score = () =>
      tf.tidy(() => {
        const sched = first.run.schedule;
        const v = generator.predictVelocity(noise, Array(4).fill(sched.timesteps[0]), { text });
        const x0 = first.run.scheduler.predictOriginal({
          schedule: sched,
          index: 0 as never,
          sample: noise,
          modelOutput: v,
        });
        return tf.mean(tf.sigmoid(reward.score(decoder.decode(x0 as LatentVideo)))).dataSync()[0] as number;
      });
    const before = score();
    for (let i = 0; i < 30; i++) first.trainStep(batch);
    expect(score()).toBeGreaterThan(before + 0.02);
    first.dispose();

    const all = createRgbReflTrainer(
      { generator, reward, decoder },
      { numSteps: 9, textDropout: 0, decodeFrames: 'all', measureMemory: false },
    );
    all.trainStep(batch);
    expect(decoder.lastFrames).toBe(2);
    all.dispose();
    tf.dispose([noise, text]);
    generator.dispose();
    decoder.dispose();
    disposeBatch(batch);
  });

  it('fit reports every micro-step to onStep, and stops on an abort signal', async () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const batch = tinyBatch(14, 6);
    const source = tensorVideoSource(batch);
    const seen: Array<[number, number, number]> = [];
    const controller = new AbortController();
    const trainer = new PrflTrainer(
      { generator, reward },
      {
        numSteps: 6,
        textDropout: 0,
        measureMemory: false,
        onStep: (m, p) => {
          seen.push([m.step, p.epoch, p.batchInEpoch]);
          if (m.step === 5) controller.abort();
        },
      },
    );
    const result = await trainer.fit(source, { epochs: 4, batchSize: 2, signal: controller.signal });
    expect(seen).toEqual([
      [1, 0, 1],
      [2, 0, 2],
      [3, 0, 3],
      [4, 1, 1],
      [5, 1, 2],
    ]);
    expect(result.step).toBe(5);
    expect(result.updates).toBe(1);
    expect(() => new PrflTrainer({ generator, reward }, { onStep: 3 as never })).toThrow(
      /onStep: expected a function, got number/,
    );
    await expect(trainer.fit(source, { epochs: 1, batchSize: 2, checkpointEvery: 2 })).rejects.toThrow(
      /checkpointEvery: expected a positive integer together with checkpointDir, got 2 and no checkpointDir/,
    );
    trainer.dispose();
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });
});
