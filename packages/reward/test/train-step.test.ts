/** The PAVRM training step: what it computes, what it updates, what it leaves alone, errors and leaks. */
import * as tf from '@tensorflow/tfjs-core';
import {
  assertNoLeak,
  backendsUnderTest,
  Generator,
  initBackend,
  InvalidArgumentError,
  shutdownBackend,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addNoise,
  bceWithLogits,
  disposeBatch,
  PavrmTrainer,
  sampleTrainingSigmas,
  trainingSigmaGrid,
} from '../src/index.js';
import { motionLatentPairs } from '../src/toy/index.js';
import { tinyBatch, tinyReward } from './helpers.js';

describe.each(backendsUnderTest())('pavrmTrainStep on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('BCE step: loss of x_sigma built from the seeded sigma and eps, paper learning rates, frozen embeddings', async () => {
    const { backbone, reward } = tinyReward(1);
    const batch = tinyBatch(4);
    const trainer = new PavrmTrainer(reward, { seed: 11 });
    // Replay what the step will draw: the trainer's noise stream is `pavrm-noise/<seed>`.
    const replay = new Generator('pavrm-noise/11');
    const { sigmas, timesteps } = sampleTrainingSigmas(replay, 4);
    const eps = replay.normal<tf.Rank.R5>(batch.latents.shape);
    const expected = tf.tidy(
      () =>
        bceWithLogits(
          reward.score(addNoise(batch.latents, eps, sigmas) as tf.Tensor5D, timesteps, batch.conditioning),
          batch.labels,
        ).dataSync()[0]!,
    );
    const before = new Map([...reward.namedVariables()].map(([k, v]) => [k, v.dataSync().slice()]));
    const m = trainer.trainStep(batch);
    expect(m.kind).toBe('pointwise');
    expect(m.step).toBe(1);
    expect(m.batchSize).toBe(4);
    expect(m.sigmas).toEqual(sigmas);
    const grid = new Set(trainingSigmaGrid());
    expect(m.sigmas.every((s) => grid.has(Math.fround(s)))).toBe(true);
    expect(m.loss).toBeCloseTo(expected, 5);
    expect(m.lr).toEqual({ backbone: 1e-6, head: 1e-5 });
    expect(m.gradNorm).toBeGreaterThan(0);
    expect(m.accuracy).toBeGreaterThanOrEqual(0);
    for (const [name, v] of reward.namedVariables()) {
      const changed = v.dataSync().some((x, i) => x !== before.get(name)![i]);
      const embedding = /embedding/.test(name);
      expect(changed, name).toBe(!embedding);
      expect(v.trainable).toBe(!embedding);
    }
    tf.dispose(eps);
    disposeBatch(batch);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('BCE step on soft labels: the loss is the cross-entropy against the probabilities; accuracy thresholds them at 0.5', () => {
    const { backbone, reward } = tinyReward(1);
    const hard = tinyBatch(4);
    const soft = { ...hard, labels: tf.tensor1d([0.9, 0.2, 0.5, 0.05]) };
    const trainer = new PavrmTrainer(reward, { seed: 12 });
    const replay = new Generator('pavrm-noise/12');
    const { sigmas, timesteps } = sampleTrainingSigmas(replay, 4);
    const eps = replay.normal<tf.Rank.R5>(hard.latents.shape);
    const logits = tf.tidy(() =>
      reward.score(addNoise(hard.latents, eps, sigmas) as tf.Tensor5D, timesteps, hard.conditioning),
    );
    const r = Array.from(logits.dataSync());
    const y = [0.9, 0.2, 0.5, 0.05];
    // -y log s(r) - (1 - y) log(1 - s(r)), written out in float64.
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const expected =
      r.reduce((acc, ri, i) => acc - y[i]! * Math.log(sig(ri)) - (1 - y[i]!) * Math.log(1 - sig(ri)), 0) / 4;
    const correct = r.filter((ri, i) => ri >= 0 === y[i]! >= 0.5).length / 4;
    const m = trainer.trainStep(soft);
    expect(m.loss).toBeCloseTo(expected, 5);
    expect(m.accuracy).toBe(correct);
    tf.dispose([eps, logits, soft.labels]);
    disposeBatch(hard);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('Bradley-Terry step: identical win and lose give loss ln 2 (same eps and sigma for both)', () => {
    const { backbone, reward } = tinyReward(2);
    const pairs = motionLatentPairs(new Generator(3), 3);
    const same = { ...pairs, lose: pairs.win };
    const trainer = new PavrmTrainer(reward, { seed: 1 });
    const m = trainer.trainStep(same);
    expect(m.kind).toBe('pairwise');
    expect(m.loss).toBeCloseTo(Math.log(2), 6);
    expect(m.accuracy).toBe(0);
    const m2 = trainer.trainStep(pairs);
    expect(Number.isFinite(m2.loss)).toBe(true);
    disposeBatch(pairs);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('clips the global gradient norm and can train the head alone', () => {
    const { backbone, reward } = tinyReward(3);
    const batch = tinyBatch(4);
    const trainer = new PavrmTrainer(reward, {
      seed: 2,
      maxGradNorm: 1e-3,
      lrHead: 1,
      lrBackbone: 0,
      freezeBackbone: true,
      weightDecay: 0,
    });
    expect(trainer.optimizer.groups.map((g) => g.name)).toEqual(['head']);
    const w = reward.headVariables().get('mlp.fc1.weight')!;
    const before = w.dataSync().slice();
    const block = backbone.namedVariables().get('blocks.0.ffn.0.weight')!;
    const blockBefore = block.dataSync().slice();
    const m = trainer.trainStep(batch);
    expect(m.gradNorm).toBeGreaterThan(1e-3);
    // Adam's first step moves each weight by about lr (the sign of its gradient), whatever the clip.
    const after = w.dataSync();
    expect(Math.max(...after.map((x, i) => Math.abs(x - before[i]!)))).toBeLessThan(1.01);
    expect(block.dataSync()).toEqual(blockBefore);
    disposeBatch(batch);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('leaks no tensors across training steps (pointwise and pairwise)', async () => {
    const { backbone, reward } = tinyReward(4);
    const batch = tinyBatch(2);
    const pairs = motionLatentPairs(new Generator(5), 2);
    const trainer = new PavrmTrainer(reward, { seed: 3 });
    await assertNoLeak(
      () => {
        trainer.trainStep(batch);
      },
      { iterations: 3, warmup: 1, label: 'pointwise step' },
    );
    await assertNoLeak(
      () => {
        trainer.trainStep(pairs);
      },
      { iterations: 3, warmup: 1, label: 'pairwise step' },
    );
    disposeBatch(batch);
    disposeBatch(pairs);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });

  it('rejects bad batches with errors naming what arrived', () => {
    const { backbone, reward } = tinyReward(5);
    const trainer = new PavrmTrainer(reward);
    const batch = tinyBatch(3);
    const wrongRank = { ...batch, latents: tf.zeros([3, 8, 8, 4]) as unknown as tf.Tensor5D };
    expect(() => trainer.trainStep(wrongRank)).toThrow(
      /batch\.latents: expected a latent video \[B, F, H, W, C\] \(rank 5, channels last\), got rank 4 \[3, 8, 8, 4\]/,
    );
    const shortLabels = { ...batch, labels: tf.tensor1d([1, 0]) };
    expect(() => trainer.trainStep(shortLabels)).toThrow(
      /batch\.labels: expected one label per batch element, shape \[3\], got \[2\]/,
    );
    const outOfRange = { ...batch, labels: tf.tensor1d([1, 1.5, 0]) };
    expect(() => trainer.trainStep(outOfRange)).toThrow(
      /batch\.labels\[1\]: expected a label in \[0, 1\] \(0\/1, or the probability of good\), got 1\.5/,
    );
    const nanLabel = { ...batch, labels: tf.tensor1d([1, Number.NaN, 0]) };
    expect(() => trainer.trainStep(nanLabel)).toThrow(
      /batch\.labels\[1\]: expected a label in \[0, 1\].*got NaN/,
    );
    const nan = tf.tidy(() =>
      tf.where(
        tf.equal(tf.reshape(tf.range(0, batch.latents.size), batch.latents.shape), 17),
        tf.fill(batch.latents.shape, Number.NaN),
        batch.latents,
      ),
    ) as tf.Tensor5D;
    expect(() => trainer.trainStep({ ...batch, latents: nan })).toThrow(
      /batch\.latents: expected finite values, got 1 NaN and 0 Inf in a \[3, 4, 8, 8, 4\] tensor \(first at flat index 17: NaN\)/,
    );
    const pairs = {
      ids: [['a', 'b'] as const],
      win: tf.zeros([1, 4, 8, 8, 4]) as tf.Tensor5D,
      lose: tf.zeros([1, 4, 8, 4, 4]) as tf.Tensor5D,
      conditioning: { text: tf.zeros([1, 2, 8]) as tf.Tensor3D },
    };
    expect(() => trainer.trainStep(pairs)).toThrow(
      /batch\.lose: expected shape \[1, 4, 8, 8, 4\], got \[1, 4, 8, 4, 4\]/,
    );
    expect(trainer.step).toBe(0);
    // score() itself checks its input.
    expect(() => reward.score(nan, [0, 0, 0] as never, batch.conditioning)).toThrow(
      /^x: expected finite values, got 1 NaN/,
    );
    expect(() => reward.score(batch.latents, [0, 0] as never, batch.conditioning)).toThrow(
      /timesteps: expected 3 timesteps \(one per batch element\), got 2 \(an array of length 2\)/,
    );
    expect(() => reward.score(batch.latents, [0, 0, 1200] as never, batch.conditioning)).toThrow(
      InvalidArgumentError,
    );
    tf.dispose([
      wrongRank.latents,
      shortLabels.labels,
      outOfRange.labels,
      nanLabel.labels,
      nan,
      pairs.win,
      pairs.lose,
      pairs.conditioning.text,
    ]);
    disposeBatch(batch);
    trainer.dispose();
    reward.dispose();
    backbone.dispose();
  });
});
