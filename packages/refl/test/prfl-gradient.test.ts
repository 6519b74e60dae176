/**
 * The PRFL step's gradient against central finite differences of the same loss: fixed k, fixed noise and
 * dropout (same seed), the rollout by a frozen copy so x_k does not move with the perturbed weights (the
 * method treats x_k as a constant of the taped step).
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, Generator, initBackend, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrflRun, disposePrflRun, type PrflOptions, prflStep } from '../src/index.js';
import {
  disposeBatch,
  nullConditioning,
  TinyDecoder,
  TinyPixelReward,
  TinyReward,
  TinyVelocity,
  tinyBatch,
} from './helpers.js';

describe.each(backendsUnderTest())('PRFL step gradient on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  const cases: Array<[string, number, Partial<PrflOptions>]> = [
    ['k = 0 (first step, no corrector)', 0, {}],
    ['k = 3 (UniPC order 2 with the corrector)', 3, {}],
    ['k = N - 2 (last trainable step)', 6, {}],
    ['k = 4, reward term alone, logsigmoid form', 4, { sftWeight: 0, rewardLoss: 'logsigmoid' }],
    ['k = 2, lambda at the paper value 0.1', 2, { rewardWeight: 0.1 }],
    ['SFT alone, reward-weighted (RWR, softmax)', 0, { rewardWeight: 0, sftWeighting: 'reward-softmax' }],
    ['RGB ReFL, k = 5, first frame decoded', 5, { readout: 'pixel' }],
    [
      'RGB ReFL, k = 4, all frames decoded, sigmoid form',
      4,
      { readout: 'pixel', decodeFrames: 'all', rewardLoss: 'sigmoid' },
    ],
    ['k = 3 with the anchor to a frozen base model', 3, { anchorWeight: 0.5 }],
    [
      'k = 3 with running reward normalisation (statistics fixed within a step)',
      3,
      { normalizeReward: true },
    ],
  ];

  it.each(cases)('equals central differences along random directions: %s', (_name, k, extra) => {
    const generator = new TinyVelocity(1);
    const frozen = new TinyVelocity(1);
    const pixel = extra.readout === 'pixel';
    const reward = pixel ? new TinyPixelReward() : new TinyReward(2);
    const decoder = new TinyDecoder();
    const anchorModel = new TinyVelocity(7);
    const batch = tinyBatch(5);
    const nul = nullConditioning();
    const options: PrflOptions = {
      numSteps: 8,
      stepRange: [k, k],
      accumulationSteps: 1_000_000, // never update: the weights only move by our perturbations
      seed: 11,
      textDropout: 0.5,
      rewardWeight: 1,
      measureMemory: false,
      ...extra,
    };
    const parts = {
      generator,
      reward,
      rolloutModel: frozen,
      nullConditioning: nul,
      ...(pixel ? { decoder } : {}),
      ...(extra.anchorWeight ? { anchorModel } : {}),
    };
    const trainable = [...generator.vars.values()].filter((v) => v.trainable);

    // Analytic: the sum of both terms' gradients, as the step hands them to the accumulator.
    const analytic = new Map<string, Float32Array>();
    const run = createPrflRun(
      {
        ...parts,
        inspectGradients: (_term, grads) => {
          for (const [name, g] of Object.entries(grads)) {
            const prev = analytic.get(name);
            const add = g.dataSync() as Float32Array;
            analytic.set(name, prev ? prev.map((x, i) => x + (add[i] as number)) : Float32Array.from(add));
          }
        },
      },
      options,
    );
    const base = prflStep(run, batch);
    disposePrflRun(run);
    expect(base.k).toBe(k);
    // Only the generator's trainable variables: not its frozen one, not the reward's (trainable) ones.
    expect([...analytic.keys()].sort()).toEqual(trainable.map((v) => v.name).sort());

    const lossAt = (): number => {
      const r = createPrflRun(parts, options);
      const m = prflStep(r, batch);
      disposePrflRun(r);
      return m.loss;
    };
    const g = new Generator(99);
    const eps = 1e-2;
    const original = trainable.map((v) => tf.clone(v));
    for (let trial = 0; trial < 3; trial++) {
      const dirs = trainable.map((v) => g.normalArray(v.size));
      const norm = Math.sqrt(dirs.reduce((a, d) => a + d.reduce((s, x) => s + x * x, 0), 0));
      let predicted = 0;
      trainable.forEach((v, i) => {
        const d = dirs[i] as Float32Array;
        const grad = analytic.get(v.name) as Float32Array;
        for (let j = 0; j < d.length; j++) {
          d[j] = (d[j] as number) / norm;
          predicted += (grad[j] as number) * (d[j] as number);
        }
      });
      const shift = (sign: number) =>
        trainable.forEach((v, i) => {
          const d = tf.tensor(dirs[i] as Float32Array, v.shape);
          v.assign(tf.tidy(() => tf.add(original[i] as tf.Tensor, tf.mul(d, sign * eps))));
          d.dispose();
        });
      shift(1);
      const plus = lossAt();
      shift(-1);
      const minus = lossAt();
      shift(0);
      const fd = (plus - minus) / (2 * eps);
      // float32 losses of order 1 carry ~1e-7 rounding, so the difference quotient ~1e-5; the O(eps^2)
      // truncation error of tanh networks is ~1e-4 relative.
      expect(Math.abs(fd - predicted), `fd ${fd} vs analytic ${predicted}`).toBeLessThan(
        1e-4 * Math.max(1, Math.abs(predicted)) + 6e-5,
      );
    }
    tf.dispose(original);
    for (const m of [generator, frozen, decoder, anchorModel]) m.dispose();
    if (reward instanceof TinyReward) reward.dispose();
    disposeBatch(batch);
    tf.dispose(nul.text);
  });
});
