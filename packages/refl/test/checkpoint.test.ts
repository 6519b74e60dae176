/** Checkpoints: a run resumed from its last checkpoint continues exactly like an uninterrupted one. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  CorruptFileError,
  Generator,
  initBackend,
  type LatentVideo,
  loadSafetensors,
  shutdownBackend,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_FILE,
  type PrflStepMetrics,
  PrflTrainer,
  type PrflTrainerOptions,
  tensorVideoSource,
} from '../src/index.js';
import { nullConditioning, snapshot, TinyReward, TinyVelocity } from './helpers.js';

describe.each(backendsUnderTest())('checkpoint and resume on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });
  const tmp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'prfl-refl-ckpt-'));
    dirs.push(d);
    return d;
  };
  const data = () => {
    const g = new Generator(21);
    return {
      latents: g.normal([6, 2, 3, 3, 4], 0.5, 0.5) as LatentVideo,
      conditioning: { text: g.normal([6, 3, 4]) as tf.Tensor3D },
    };
  };
  const comparable = (m: PrflStepMetrics) => [
    m.step,
    m.loss,
    m.k,
    m.gradNorm,
    m.sftSigmas,
    m.textDropped,
    m.reward,
  ];

  it.each([
    ['the default schedule', {}],
    [
      'the reference schedule with EMA and reward normalisation',
      { updateSchedule: 'reference', emaDecay: 0.9, normalizeReward: true },
    ],
  ] as Array<[string, PrflTrainerOptions]>)(
    'resuming mid-window and mid-epoch after step 7 of 14 gives bit-identical weights (%s)',
    async (_name, extra) => {
      const d = data();
      const source = tensorVideoSource(d);
      const nul = nullConditioning();
      const reward = new TinyReward(2);
      const options: PrflTrainerOptions = {
        numSteps: 6,
        accumulationSteps: 3,
        lr: 1e-2,
        textDropout: 0.5,
        seed: 5,
        measureMemory: false,
        ...extra,
      };
      const fit = { epochs: 10, batchSize: 2 };

      const genA = new TinyVelocity(1);
      const logA: PrflStepMetrics[] = [];
      const a = new PrflTrainer(
        { generator: genA, reward, nullConditioning: nul },
        { ...options, onStep: (m) => logA.push(m) },
      );
      await a.fit(source, { ...fit, maxSteps: 14 });

      const genB = new TinyVelocity(1);
      const dir = tmp();
      const b = new PrflTrainer({ generator: genB, reward, nullConditioning: nul }, options);
      await b.fit(source, { ...fit, maxSteps: 7, checkpointDir: dir });
      expect(b.run.window.count).toBeGreaterThan(0); // the checkpoint holds an open window

      // A "new process": a generator with other weights, a trainer built with another seed.
      const genC = new TinyVelocity(99);
      const logC: PrflStepMetrics[] = [];
      const c = await PrflTrainer.resume(
        dir,
        { generator: genC, reward, nullConditioning: nul },
        { ...options, seed: 123, onStep: (m) => logC.push(m) },
      );
      expect(c.position).toEqual({ step: 7, updates: b.run.updates, epoch: 2, batchInEpoch: 1 });
      expect(c.seed).toBe(5);
      await c.fit(source, { ...fit, maxSteps: 14 });

      expect(logC.map(comparable)).toEqual(logA.slice(7).map(comparable));
      const wa = snapshot(genA.vars);
      for (const [name, v] of snapshot(genC.vars))
        expect(Array.from(v), name).toEqual(Array.from(wa.get(name) ?? []));
      expect(c.run.optimizer.stepCount).toBe(a.run.optimizer.stepCount);
      // tfjs variable names differ between the two generators: compare under the stable names.
      const stable = (key: string) => key.replace(/^tiny_velocity_\d+\//, '');
      const byStable = (state: Record<string, tf.Tensor>) =>
        Object.fromEntries(Object.entries(state).map(([k, t]) => [stable(k), Array.from(t.dataSync())]));
      const sa = a.run.optimizer.stateDict();
      const sc = c.run.optimizer.stateDict();
      expect(byStable(sc)).toEqual(byStable(sa));
      if (a.run.ema && c.run.ema) {
        const ea = a.run.ema.stateDict();
        const ec = c.run.ema.stateDict();
        expect(byStable(ec)).toEqual(byStable(ea));
        tf.dispose([...Object.values(ea), ...Object.values(ec)]);
        expect(c.run.normalizer?.getState()).toEqual(a.run.normalizer?.getState());
      }
      tf.dispose([...Object.values(sa), ...Object.values(sc)]);
      for (const t of [a, b, c]) t.dispose();
      for (const m of [genA, genB, genC, reward]) m.dispose();
      tf.dispose([d.latents, d.conditioning.text, nul.text]);
    },
  );

  it('writes checkpoint.json naming the current files under stable names, and drops older files', async () => {
    const d = data();
    const generator = new TinyVelocity(1);
    const reward = new TinyReward(2);
    const trainer = new PrflTrainer(
      { generator, reward },
      { numSteps: 6, accumulationSteps: 2, textDropout: 0, measureMemory: false, emaDecay: 0.99 },
    );
    const dir = tmp();
    const batch = { latents: d.latents, conditioning: d.conditioning };
    trainer.trainStep(batch);
    await trainer.saveCheckpoint(dir);
    trainer.trainStep(batch);
    trainer.trainStep(batch);
    const state = await trainer.saveCheckpoint(dir);
    expect(readdirSync(dir).sort()).toEqual([
      CHECKPOINT_FILE,
      'ema-00000003.safetensors',
      'model-00000003.safetensors',
      'optimizer-00000003.safetensors',
      'window-00000003.safetensors',
    ]);
    const json = JSON.parse(readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8'));
    expect(json).toMatchObject({
      format: 'prfl-refl-checkpoint',
      version: 1,
      step: 3,
      updates: 1,
      files: state.files,
    });
    expect(json.options).toMatchObject({ lr: 5e-6, accumulationSteps: 2, lrSchedule: 'constant' });
    const weights = await loadSafetensors(path.join(dir, state.files.model));
    expect(Object.keys(weights).sort()).toEqual([...generator.vars.keys()].sort());
    const moments = await loadSafetensors(path.join(dir, state.files.optimizer));
    expect(Object.keys(moments)).toContain('w1.exp_avg');
    expect(Object.keys(moments)).toContain('optimizer.step_count');
    expect(Object.keys(moments).some((k) => k.startsWith('frozen'))).toBe(false);
    const window = await loadSafetensors(path.join(dir, state.files.window));
    expect(Object.keys(window).sort()).toEqual(['a', 'b1', 'b2', 'w1', 'w2', 'wc', 'window.count', 'wt']);
    tf.dispose([...Object.values(weights), ...Object.values(moments), ...Object.values(window)]);

    // Refused before anything changes: a corrupt manifest, a model that does not match, a missing EMA.
    const before = snapshot(generator.vars);
    const other = new TinyVelocity(3, { hidden: 5 });
    await expect(PrflTrainer.resume(dir, { generator: other, reward }, { emaDecay: 0.99 })).rejects.toThrow(
      /'w1' has shape \[4, 8\] in the checkpoint, the generator's is \[4, 5\]/,
    );
    await expect(PrflTrainer.resume(dir, { generator, reward })).rejects.toThrow(
      /holds an EMA but the run keeps none/,
    );
    writeFileSync(path.join(dir, CHECKPOINT_FILE), '{"format": "something else"}');
    await expect(PrflTrainer.resume(dir, { generator, reward }, { emaDecay: 0.99 })).rejects.toThrow(
      CorruptFileError,
    );
    expect(snapshot(generator.vars)).toEqual(before);
    trainer.dispose();
    for (const m of [generator, other, reward]) m.dispose();
    tf.dispose([d.latents, d.conditioning.text]);
  });
});
