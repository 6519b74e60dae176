/**
 * PRFL with the real architecture at a tiny size: @prfl/models' WanDiT as the generator and
 * @prfl/reward's PAVRM on a truncated WanDiT copy as the frozen reward, on Wan's 40-step schedule.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, Generator, initBackend, type LatentVideo, shutdownBackend } from '@prfl/tensor';
import { WanDiT } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrflRun, disposePrflRun, prflStep, type VideoBatch } from '../src/index.js';
import { snapshot } from './helpers.js';

describe.each(backendsUnderTest())('PRFL with a tiny WanDiT and PAVRM on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  const models = () => {
    const generator = new WanDiT('tiny', { seed: 1 });
    const source = new WanDiT('tiny', { seed: 2 });
    const backbone = source.truncate(2);
    source.dispose();
    const reward = new Pavrm(backbone, { hidden: [16, 8], seed: 3 });
    const g = new Generator(4);
    const batch: VideoBatch = {
      latents: g.normal([1, 2, 4, 4, 16]) as LatentVideo,
      conditioning: { text: g.normal([1, 4, 32]) as tf.Tensor3D },
    };
    const nul = { text: tf.zeros([1, 4, 32]) as tf.Tensor3D };
    const dispose = () => {
      generator.dispose();
      reward.dispose();
      backbone.dispose();
      tf.dispose([batch.latents, batch.conditioning.text, nul.text]);
    };
    return { generator, reward, batch, nul, dispose };
  };

  it('trains the generator only, with the paper defaults except a larger lr and no accumulation, leak-free', () => {
    const { generator, reward, batch, nul, dispose } = models();
    const run = createPrflRun(
      { generator, reward, nullConditioning: nul },
      { accumulationSteps: 1, lr: 1e-4, stepRange: 'late', seed: 5 },
    );
    const rewardBefore = snapshot(reward.namedVariables());
    const genBefore = snapshot(generator.namedVariables());
    prflStep(run, batch);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const m = prflStep(run, batch);
      expect(m.k).toBeGreaterThanOrEqual(26);
      expect(Number.isFinite(m.loss)).toBe(true);
      expect(m.updatesThisStep).toBe(1);
      expect(m.gradNorm.reward).toBeGreaterThan(0);
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(snapshot(reward.namedVariables())).toEqual(rewardBefore);
    const after = snapshot(generator.namedVariables());
    const trainable = [...generator.namedVariables()].filter(([, v]) => v.trainable).map(([n]) => n);
    expect(trainable.some((n) => after.get(n)?.some((x, i) => x !== genBefore.get(n)?.[i]))).toBe(true);
    disposePrflRun(run);
    dispose();
  });

  it('the reward term gradient matches central differences (k = 20, along the gradient and a mixed direction)', () => {
    const { generator, reward, batch, dispose } = models();
    const frozen = new WanDiT('tiny', { seed: 1 });
    const options = {
      stepRange: [20, 20] as const,
      sftWeight: 0,
      rewardWeight: 1,
      rewardLoss: 'logsigmoid' as const,
      textDropout: 0,
      accumulationSteps: 1_000_000,
      measureMemory: false,
    };
    const parts = { generator, reward, rolloutModel: frozen };
    const trainable = [...generator.namedVariables().values()].filter((v) => v.trainable);
    const grads = new Map<string, Float32Array>();
    const run = createPrflRun(
      {
        ...parts,
        inspectGradients: (_t, gr) => {
          for (const v of trainable) {
            const gv = gr[v.name];
            if (gv) grads.set(v.name, gv.dataSync() as Float32Array);
          }
        },
      },
      options,
    );
    prflStep(run, batch);
    disposePrflRun(run);
    const original = trainable.map((v) => tf.clone(v));
    const unit = (arrays: Float32Array[]) => {
      const n = Math.sqrt(arrays.reduce((a, d) => a + d.reduce((s, x) => s + x * x, 0), 0));
      return arrays.map((d) => d.map((x) => x / n));
    };
    const gradDir = unit(trainable.map((v) => grads.get(v.name) ?? new Float32Array(v.size)));
    const g = new Generator(6);
    const randomDir = unit(trainable.map((v) => g.normalArray(v.size)));
    const mixed = unit(
      gradDir.map((d, i) => d.map((x, j) => x + ((randomDir[i] as Float32Array)[j] as number))),
    );
    const eps = 1e-2;
    for (const dirs of [gradDir, mixed]) {
      let predicted = 0;
      trainable.forEach((v, i) => {
        const gr = grads.get(v.name);
        const d = dirs[i] as Float32Array;
        if (gr) for (let j = 0; j < d.length; j++) predicted += (gr[j] as number) * (d[j] as number);
      });
      const lossAt = (sign: number) => {
        trainable.forEach((v, i) => {
          const d = tf.tensor(dirs[i] as Float32Array, v.shape);
          v.assign(tf.tidy(() => tf.add(original[i] as tf.Tensor, tf.mul(d, sign * eps))));
          d.dispose();
        });
        const r = createPrflRun(parts, options);
        const loss = prflStep(r, batch).loss;
        disposePrflRun(r);
        return loss;
      };
      const fd = (lossAt(1) - lossAt(-1)) / (2 * eps);
      expect(Math.abs(predicted)).toBeGreaterThan(1e-3);
      expect(Math.abs(fd - predicted), `fd ${fd} vs analytic ${predicted}`).toBeLessThan(
        1e-2 * Math.abs(predicted),
      );
    }
    trainable.forEach((v, i) => {
      v.assign(original[i] as tf.Tensor);
    });
    tf.dispose(original);
    frozen.dispose();
    dispose();
  });
});
