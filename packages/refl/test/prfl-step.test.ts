/** The PRFL step's behaviour: k ranges, the schedule it trains on, accumulation, learning, leaks, skips. */
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  InvalidArgumentError,
  type LatentVideo,
  shutdownBackend,
} from '@prfl/tensor';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPrflRun,
  disposePrflRun,
  evaluateProcessReward,
  type PrflOptions,
  type PrflStepMetrics,
  prflStep,
} from '../src/index.js';
import { disposeBatch, nullConditioning, snapshot, TinyReward, TinyVelocity, tinyBatch } from './helpers.js';

describe.each(backendsUnderTest())('prflStep on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  const setup = (options: PrflOptions = {}, seed = 1) => {
    const generator = new TinyVelocity(seed);
    const reward = new TinyReward(2);
    const nul = nullConditioning();
    const run = createPrflRun(
      { generator, reward, nullConditioning: nul },
      { measureMemory: false, ...options },
    );
    const dispose = () => {
      disposePrflRun(run);
      generator.dispose();
      reward.dispose();
      tf.dispose(nul.text);
    };
    return { generator, reward, run, dispose };
  };

  it('trains on the 40-step shift-5 UniPC schedule and scores x_{k+1} at t_{k+1}', () => {
    const { run, dispose } = setup({ accumulationSteps: 1 });
    expect(run.schedule.numSteps).toBe(40);
    expect(run.schedule.timesteps.slice(0, 2)).toEqual([999, 994]);
    expect(run.schedule.timesteps.slice(-2)).toEqual([208, 113]);
    const batch = tinyBatch(3, 1, [1, 2, 2]);
    for (let i = 0; i < 4; i++) {
      const m = prflStep(run, batch);
      expect(m.rewardTimestep).toBe(run.schedule.timesteps[m.k + 1]);
      expect(m.sigma).toBe(run.schedule.sigmas[m.k]);
      expect(m.sigmaNext).toBe(run.schedule.sigmas[m.k + 1]);
      expect(m.sftSigmas).toHaveLength(1);
    }
    disposeBatch(batch);
    dispose();
  });

  it.each([
    ['full', [0, 6]],
    ['early', [0, 1]],
    ['middle', [2, 3]],
    ['late', [4, 6]],
    [
      [3, 4],
      [3, 4],
    ],
  ] as const)('stepRange %j draws every k in %j and nothing else', (range, [lo, hi]) => {
    const { run, dispose } = setup({ numSteps: 8, stepRange: range, sftWeight: 0, seed: 3 });
    const batch = tinyBatch(4, 1, [1, 2, 2]);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add(prflStep(run, batch).k);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: hi - lo + 1 }, (_, i) => lo + i));
    disposeBatch(batch);
    dispose();
  });

  it('updates once per window of accumulationSteps micro-steps, and never touches the reward or frozen variables', () => {
    const { generator, reward, run, dispose } = setup({ numSteps: 6, accumulationSteps: 3, lr: 1e-2 });
    const batch = tinyBatch(5);
    const rewardBefore = snapshot(reward.vars);
    const frozenBefore = generator.vars.get('frozen')?.dataSync().slice();
    let weights = snapshot(generator.vars);
    const updates: number[] = [];
    for (let i = 1; i <= 9; i++) {
      const m = prflStep(run, batch);
      updates.push(m.updatesThisStep);
      const now = snapshot(generator.vars);
      const changed = [...now].some(([n, v]) => v.some((x, j) => x !== weights.get(n)?.[j]));
      expect(changed, `step ${i}`).toBe(i % 3 === 0);
      if (i % 3 === 0) expect(m.gradNorm.update).toBeGreaterThan(0);
      else expect(m.gradNorm.update).toBeNull();
      weights = now;
    }
    expect(updates).toEqual([0, 0, 1, 0, 0, 1, 0, 0, 1]);
    expect(run.optimizer.stepCount).toBe(3);
    expect(snapshot(reward.vars)).toEqual(rewardBefore);
    expect(generator.vars.get('frozen')?.dataSync()).toEqual(frozenBefore);
    disposeBatch(batch);
    dispose();
  });

  it("updateSchedule 'reference' updates twice at (step + 1) % GA == 0, the first window after 4 micro-steps", () => {
    const { run, dispose } = setup({
      numSteps: 6,
      accumulationSteps: 5,
      updateSchedule: 'reference',
      lr: 1e-3,
    });
    const batch = tinyBatch(6);
    const perStep = Array.from({ length: 14 }, () => prflStep(run, batch).updatesThisStep);
    expect(perStep).toEqual([0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2]);
    expect(run.optimizer.stepCount).toBe(6);
    disposeBatch(batch);
    dispose();
  });

  it('a few PRFL steps raise the frozen reward on held-out noise and prompts', () => {
    const { generator, reward, run, dispose } = setup({
      numSteps: 8,
      accumulationSteps: 1,
      lr: 5e-3,
      seed: 4,
    });
    const scheduler = new FlowUniPCScheduler();
    const schedule = scheduler.schedule(8, { shift: 5 });
    const g = new Generator(1234);
    const noise = g.normal([4, 2, 3, 3, 4]) as LatentVideo;
    const conditioning = { text: g.normal([4, 3, 4]) as tf.Tensor3D };
    const score = () =>
      evaluateProcessReward({ generator, reward, scheduler, schedule, noise, conditioning }).mean;
    const before = score();
    const batch = tinyBatch(7, 2);
    const log: PrflStepMetrics[] = [];
    for (let i = 0; i < 30; i++) log.push(prflStep(run, batch));
    const after = score();
    expect(after).toBeGreaterThan(before + 0.05);
    expect(log.every((m) => Number.isFinite(m.loss) && !m.skipped)).toBe(true);
    tf.dispose([noise, conditioning.text]);
    disposeBatch(batch);
    dispose();
  });

  it('leaves no tensor behind over 150 micro-steps (30 updates)', () => {
    const { run, dispose } = setup({ numSteps: 6, accumulationSteps: 5, lr: 1e-3, measureMemory: true });
    const batch = tinyBatch(8);
    for (let i = 0; i < 5; i++) prflStep(run, batch); // first window: AdamW allocates its moments
    const boundary = tf.memory().numTensors;
    const counts: number[] = [];
    for (let i = 0; i < 150; i++) {
      prflStep(run, batch);
      if (run.window.count === 0) counts.push(tf.memory().numTensors);
    }
    expect(counts).toHaveLength(30);
    expect(new Set(counts)).toEqual(new Set([boundary]));
    disposeBatch(batch);
    dispose();
  });

  it('reports each phase with its time and peak memory', () => {
    const { run, dispose } = setup({
      numSteps: 6,
      accumulationSteps: 1,
      measureMemory: true,
      stepRange: [3, 3],
    });
    const batch = tinyBatch(9);
    const m = prflStep(run, batch);
    expect(Object.keys(m.phases).sort()).toEqual([
      'backward',
      'reward',
      'rollout',
      'sft',
      'taped-step',
      'update',
    ]);
    for (const p of Object.values(m.phases)) {
      expect(p.ms).toBeGreaterThanOrEqual(0);
      expect(p.peakBytes).toBeGreaterThanOrEqual(0);
    }
    expect(m.phases['taped-step']?.peakBytes).toBeGreaterThan(0);
    expect(m.phases.backward?.peakBytes).toBeGreaterThan(0);
    expect(run.meter.report().phases.map((p) => p.phase)).toContain('rollout');
    disposeBatch(batch);
    dispose();
  });

  it('skips and counts a micro-step whose reward is NaN, leaving the weights untouched', () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    let poison = false;
    const flaky = {
      namedVariables: () => reward.namedVariables(),
      score: (...args: Parameters<TinyReward['score']>) => {
        const r = reward.score(...args);
        return poison ? tf.tidy(() => tf.mul(r, Number.NaN) as tf.Tensor1D) : r;
      },
    };
    const run = createPrflRun(
      { generator, reward: flaky },
      { numSteps: 6, accumulationSteps: 1, textDropout: 0, lr: 1e-2, measureMemory: false },
    );
    const batch = tinyBatch(10);
    prflStep(run, batch);
    const before = snapshot(generator.vars);
    poison = true;
    const m = prflStep(run, batch);
    expect(m.skipped).toBe(true);
    expect(m.updatesThisStep).toBe(0);
    expect(run.skippedSteps).toBe(1);
    expect(snapshot(generator.vars)).toEqual(before);
    poison = false;
    expect(prflStep(run, batch).updatesThisStep).toBe(1);
    disposePrflRun(run);
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });

  it('text dropout swaps in the null conditioning, and needs one', () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const batch = tinyBatch(11, 4);
    const run = createPrflRun({ generator, reward }, { numSteps: 6, textDropout: 1, measureMemory: false });
    expect(() => prflStep(run, batch)).toThrow(/textDropout: 1 needs nullConditioning/);
    disposePrflRun(run);
    const nul = nullConditioning();
    const all = createPrflRun(
      { generator, reward, nullConditioning: nul },
      { numSteps: 6, textDropout: 1, measureMemory: false },
    );
    expect(prflStep(all, batch).textDropped).toBe(4);
    disposePrflRun(all);
    const bad = { text: tf.zeros([1, 5, 4]) as tf.Tensor3D };
    const wrong = createPrflRun(
      { generator, reward, nullConditioning: bad },
      { numSteps: 6, textDropout: 0.1, measureMemory: false },
    );
    expect(() => prflStep(wrong, batch)).toThrow(
      /nullConditioning\.text: expected \[1 or 4, 3, 4\].*got \[1, 5, 4\]/,
    );
    disposePrflRun(wrong);
    tf.dispose([nul.text, bad.text]);
    generator.dispose();
    reward.dispose();
    disposeBatch(batch);
  });

  it('refuses bad arguments, naming them', () => {
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const make = (o: PrflOptions) => () => createPrflRun({ generator, reward }, o);
    expect(make({ accumulationSteps: 0 })).toThrow(/accumulationSteps: expected a positive integer, got 0/);
    expect(make({ stepRange: [5, 39] })).toThrow(
      /stepRange: expected integers 0 <= lo <= hi <= 38.*got \[5, 39\]/,
    );
    expect(make({ updateSchedule: 'twice' as never })).toThrow(
      /updateSchedule: expected 'once-per-window' or 'reference', got "twice"/,
    );
    expect(make({ rewardLoss: 'mse' as never })).toThrow(
      /rewardLoss: expected one of 'hinge', 'sigmoid', 'logsigmoid', got "mse"/,
    );
    expect(make({ readout: 'pixel' })).toThrow(/decoder: readout 'pixel'/);
    expect(() => createPrflRun({ generator, reward: generator as never })).toThrow(InvalidArgumentError);
    const run = createPrflRun({ generator, reward }, { measureMemory: false, textDropout: 0 });
    const wrongChannels = {
      latents: tf.zeros([1, 1, 2, 2, 3]) as LatentVideo,
      conditioning: { text: tf.zeros([1, 3, 4]) as tf.Tensor3D },
    };
    expect(() => prflStep(run, wrongChannels)).toThrow(
      /batch\.latents: expected 4 channels.*got \[1, 1, 2, 2, 3\]/,
    );
    disposePrflRun(run);
    disposeBatch(wrongChannels);
    generator.dispose();
    reward.dispose();
  });
});
