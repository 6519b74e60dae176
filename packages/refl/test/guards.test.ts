/** Guards (EMA, reward normalisation, anchor) and the reference's update schedule, checked exactly. */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW_STEP_COUNT_KEY, backendsUnderTest, initBackend, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrflRun, disposePrflRun, prflStep, RewardNormalizer, WeightEma } from '../src/index.js';
import { disposeBatch, TinyReward, TinyVelocity, tinyBatch } from './helpers.js';

describe.each(backendsUnderTest())('guards on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  it('WeightEma: ema = decay * ema + (1 - decay) * w after each update, starting from the weights', () => {
    const v = tf.variable(tf.tensor1d([1, 2]), true, 'ema_test_v');
    const ema = new WeightEma([v], 0.9);
    v.assign(tf.tensor1d([3, 4]));
    ema.update();
    expect(Array.from(ema.get(v.name)?.dataSync() ?? [])).toEqual(
      Array.from(Float32Array.from([0.9 * 1 + 0.1 * 3, 0.9 * 2 + 0.1 * 4])),
    );
    const state = ema.stateDict();
    ema.update();
    ema.loadStateDict(state);
    ema.copyToModel();
    expect(Array.from(v.dataSync())).toEqual(Array.from(state[v.name]?.dataSync() ?? []));
    expect(() => new WeightEma([v], 1.5)).toThrow(/emaDecay: expected a finite number in \[0, 1\], got 1.5/);
    tf.dispose(Object.values(state));
    ema.dispose();
    v.dispose();
  });

  it('RewardNormalizer: identity until observed, then (r - running mean) / running std', () => {
    const n = new RewardNormalizer(0.5);
    const r = tf.tensor1d([1, 3]);
    expect(n.apply(r)).toBe(r);
    n.observe(r);
    expect(n.mean).toBe(2);
    expect(n.std).toBeCloseTo(1, 5);
    n.observe(tf.tensor1d([4, 4]));
    expect(n.mean).toBe(3); // 0.5 * 2 + 0.5 * 4
    const out = n.apply(tf.tensor1d([3, 5]));
    const expectedStd = Math.sqrt(0.5 * 5 + 0.5 * 16 - 9 + 1e-6);
    expect(Array.from(out.dataSync())[1]).toBeCloseTo(2 / expectedStd, 5);
    const single = new RewardNormalizer();
    single.observe(tf.tensor1d([7]));
    expect(single.std).toBeCloseTo(1, 5); // one value: unit variance, not a division by ~0
    tf.dispose([r, out]);
  });

  it('the anchor term is weight * mean((v - v_base)^2) at x_k, t_k and zero when the base equals the generator', () => {
    const generator = new TinyVelocity(1);
    const same = new TinyVelocity(1);
    const other = new TinyVelocity(8);
    const reward = new TinyReward(2);
    const batch = tinyBatch(3);
    const base = {
      numSteps: 6,
      stepRange: [2, 2] as const,
      textDropout: 0,
      measureMemory: false,
      anchorWeight: 2,
    };
    const a = createPrflRun({ generator, reward, anchorModel: same }, base);
    const mSame = prflStep(a, batch);
    expect(mSame.anchorLoss).toBe(0);
    disposePrflRun(a);
    const b = createPrflRun({ generator, reward, anchorModel: other }, base);
    const mOther = prflStep(b, batch);
    expect(mOther.anchorLoss).toBeGreaterThan(0);
    // Same draws: the reward term does not depend on the anchor model.
    expect(mOther.rewardLoss).toBeCloseTo(mSame.rewardLoss, 6);
    disposePrflRun(b);
    expect(() => createPrflRun({ generator, reward, anchorModel: generator })).toThrow(
      /anchorModel: shares variables with the generator/,
    );
    for (const m of [generator, same, other, reward]) m.dispose();
    disposeBatch(batch);
  });

  it("'reference' schedule: at step 4 the first update applies (SFT 1-4 + reward 1-3) / GA, the second reward 4 / GA", () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const batch = tinyBatch(4);
    const captured: Array<Record<string, Float32Array>> = [];
    const run = createPrflRun(
      {
        generator,
        reward,
        inspectGradients: (_term, grads) => {
          captured.push(
            Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, g.dataSync() as Float32Array])),
          );
        },
      },
      {
        numSteps: 6,
        updateSchedule: 'reference',
        accumulationSteps: 5,
        maxGradNorm: null,
        textDropout: 0,
        measureMemory: false,
        betas: [0.9, 0.999],
      },
    );
    // Steps 1-3: no update. Step 4: SFT (captured[6]) then update 1, reward (captured[7]) then update 2.
    let updatesAfterSft = -1;
    for (let i = 1; i <= 4; i++) {
      const m = prflStep(run, batch);
      if (i === 4) updatesAfterSft = m.updatesThisStep;
    }
    expect(updatesAfterSft).toBe(2);
    expect(captured).toHaveLength(8);
    // With m0 = 0: after update 1, m = 0.1 g1; after update 2, m = 0.9 * 0.1 g1 + 0.1 g2.
    const state = run.optimizer.stateDict();
    expect(state[ADAMW_STEP_COUNT_KEY]?.dataSync()[0]).toBe(2);
    for (const name of Object.keys(captured[0] as object)) {
      const sum = (ids: number[]) =>
        (captured[0] as Record<string, Float32Array>)[name]!.map(
          (_, j) => ids.reduce((a, id) => a + (captured[id]?.[name]?.[j] as number), 0) / 5,
        );
      const g1 = sum([0, 2, 4, 6, 1, 3, 5]); // SFT of steps 1-4 (even), reward of steps 1-3 (odd)
      const g2 = sum([7]);
      const m = state[`${name}.exp_avg`]?.dataSync() as Float32Array;
      m.forEach((x, j) => {
        const expected = 0.9 * 0.1 * (g1[j] as number) + 0.1 * (g2[j] as number);
        expect(Math.abs(x - expected), `${name}[${j}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(expected)));
      });
    }
    tf.dispose(Object.values(state));
    disposePrflRun(run);
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });

  it("'reference' schedule clips the accumulated buffer after every backward (float64 emulation)", () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const batch = tinyBatch(4);
    const captured: Array<Record<string, Float32Array>> = [];
    const maxNorm = 0.05;
    const run = createPrflRun(
      {
        generator,
        reward,
        inspectGradients: (_term, grads) => {
          captured.push(
            Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, g.dataSync() as Float32Array])),
          );
        },
      },
      {
        numSteps: 6,
        updateSchedule: 'reference',
        maxGradNorm: maxNorm,
        textDropout: 0,
        measureMemory: false,
      },
    );
    for (let i = 0; i < 4; i++) prflStep(run, batch);
    const names = Object.keys(captured[0] as object);
    // .grad += g / GA, then clip_grad_norm_(.grad) after every backward; optimizer.step at the boundary.
    const emulate = (ids: number[]) => {
      const buf = new Map(
        names.map((n) => [n, new Float64Array((captured[0] as Record<string, Float32Array>)[n]!.length)]),
      );
      let clipped = 0;
      for (const id of ids) {
        for (const n of names)
          (buf.get(n) as Float64Array).forEach((x, j, a) => {
            a[j] = x + (captured[id]?.[n]?.[j] as number) / 5;
          });
        let sq = 0;
        for (const a of buf.values()) for (const x of a) sq += x * x;
        const coef = Math.min(1, maxNorm / (Math.sqrt(sq) + 1e-6));
        if (coef < 1) clipped++;
        for (const a of buf.values())
          a.forEach((x, j) => {
            a[j] = x * coef;
          });
      }
      return { buf, clipped };
    };
    const first = emulate([0, 1, 2, 3, 4, 5, 6]);
    const second = emulate([7]);
    expect(first.clipped).toBeGreaterThan(0); // the clip was active
    const state = run.optimizer.stateDict();
    for (const n of names) {
      const m = state[`${n}.exp_avg`]?.dataSync() as Float32Array;
      m.forEach((x, j) => {
        const expected = 0.09 * (first.buf.get(n)?.[j] as number) + 0.1 * (second.buf.get(n)?.[j] as number);
        expect(Math.abs(x - expected), `${n}[${j}]`).toBeLessThan(1e-9 + 1e-5 * Math.abs(expected));
      });
    }
    tf.dispose(Object.values(state));
    disposePrflRun(run);
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });
});
