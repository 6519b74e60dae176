/** Training checkpoints: atomic files, and a resumed run that continues exactly like an uninterrupted one. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  CorruptFileError,
  Generator,
  initBackend,
  loadSafetensors,
  shutdownBackend,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE, type PavrmStepMetrics, PavrmTrainer, tensorPointwiseSource } from '../src/index.js';
import { motionLatentBatch } from '../src/toy/index.js';
import { tinyReward } from './helpers.js';

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
    const d = mkdtempSync(path.join(tmpdir(), 'prfl-reward-ckpt-'));
    dirs.push(d);
    return d;
  };

  it('resuming mid-epoch after step 4 continues bit-identically to an uninterrupted run (weights, optimizer, metrics)', async () => {
    const data = motionLatentBatch(new Generator(21), 10);
    const source = tensorPointwiseSource(data);
    const fit = { epochs: 3, batchSize: 4 };
    const options = { seed: 5, lrHead: 1e-2, lrBackbone: 1e-3 };

    // Uninterrupted: 7 steps (10 videos in batches of 4 = 3 per epoch: the resume lands mid-epoch).
    const a = tinyReward(1);
    const logA: PavrmStepMetrics[] = [];
    const trainerA = new PavrmTrainer(a.reward, { ...options, onStep: (m) => logA.push(m) });
    await trainerA.fit(source, { ...fit, maxSteps: 7 });

    // Interrupted after 4 steps, resumed in a "new process": new models with a different initialisation.
    const b = tinyReward(1);
    const dir = tmp();
    const trainerB = new PavrmTrainer(b.reward, options);
    await trainerB.fit(source, { ...fit, maxSteps: 4, checkpointDir: dir });
    const c = tinyReward(99);
    const logC: PavrmStepMetrics[] = [];
    const trainerC = await PavrmTrainer.resume(dir, c.reward, {
      ...options,
      seed: 123,
      onStep: (m) => logC.push(m),
    });
    expect(trainerC.position).toEqual({ step: 4, epoch: 1, batchInEpoch: 1 });
    expect(trainerC.seed).toBe(5);
    await trainerC.fit(source, { ...fit, maxSteps: 7 });

    expect(logC.map((m) => m.step)).toEqual([5, 6, 7]);
    expect(logC.map((m) => [m.loss, m.gradNorm, m.sigmas])).toEqual(
      logA.slice(4).map((m) => [m.loss, m.gradNorm, m.sigmas]),
    );
    const va = a.reward.namedVariables();
    for (const [name, v] of c.reward.namedVariables()) {
      expect(Array.from(v.dataSync()), name).toEqual(Array.from(va.get(name)!.dataSync()));
    }
    const sa = trainerA.optimizer.stateDict();
    const sc = trainerC.optimizer.stateDict();
    expect(Object.keys(sc).length).toBe(Object.keys(sa).length);
    expect(trainerC.optimizer.stepCount).toBe(7);
    tf.dispose([...Object.values(sa), ...Object.values(sc)]);
    for (const r of [a, b, c]) {
      r.reward.dispose();
      r.backbone.dispose();
    }
    for (const t of [trainerA, trainerB, trainerC]) t.dispose();
    tf.dispose([data.latents, data.labels, data.conditioning.text]);
  });

  it('writes checkpoint.json naming the current files, under stable names, and drops older files', async () => {
    const r = tinyReward(2);
    const data = motionLatentBatch(new Generator(22), 4);
    const trainer = new PavrmTrainer(r.reward, { seed: 1 });
    const dir = tmp();
    trainer.trainStep(data);
    await trainer.saveCheckpoint(dir);
    trainer.trainStep(data);
    const state = await trainer.saveCheckpoint(dir);
    expect(readdirSync(dir).sort()).toEqual([
      CHECKPOINT_FILE,
      'model-00000002.safetensors',
      'optimizer-00000002.safetensors',
    ]);
    const json = JSON.parse(readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8'));
    expect(json).toMatchObject({
      format: 'prfl-reward-checkpoint',
      version: 1,
      step: 2,
      seed: 1,
      files: state.files,
    });
    expect(json.noise.s).toHaveLength(4);
    expect(json.reward).toMatchObject({ aggregation: 'query-attention', blocks: 2, featureDim: 32 });
    const weights = await loadSafetensors(path.join(dir, state.files.model));
    expect(Object.keys(weights).sort()).toEqual([...r.reward.namedVariables().keys()].sort());
    const moments = await loadSafetensors(path.join(dir, state.files.optimizer));
    expect(Object.keys(moments)).toContain('mlp.fc1.weight.exp_avg');
    expect(Object.keys(moments)).toContain('blocks.0.self_attn.q.weight.exp_avg_sq');
    expect(Object.keys(moments)).toContain('optimizer.step_count');
    expect(Object.keys(moments).some((k) => k.includes('embedding'))).toBe(false);
    tf.dispose([...Object.values(weights), ...Object.values(moments)]);

    // A corrupt manifest and a model that does not match are rejected before anything changes.
    const other = tinyReward(3, { hidden: [8] });
    await expect(PavrmTrainer.resume(dir, other.reward)).rejects.toThrow(
      /missing mlp\.fc1\.weight|do not match/,
    );
    writeFileSync(path.join(dir, CHECKPOINT_FILE), '{"format":"something-else"}');
    await expect(trainer.loadCheckpoint(dir)).rejects.toThrow(CorruptFileError);
    for (const x of [r, other]) {
      x.reward.dispose();
      x.backbone.dispose();
    }
    trainer.dispose();
    tf.dispose([data.latents, data.labels, data.conditioning.text]);
  });

  it('removes temporary files a killed save left behind on the next save and on load, and nothing else', async () => {
    const r = tinyReward(4);
    const data = motionLatentBatch(new Generator(23), 4);
    const trainer = new PavrmTrainer(r.reward, { seed: 1 });
    const dir = tmp();
    trainer.trainStep(data);
    await trainer.saveCheckpoint(dir);
    // What writeFileAtomic leaves when its process is killed mid-write (4194305: above any pid_max).
    const stale = (target: string) => `.${target}.4194305.m4x2k9ab.q8z3k1.tmp`;
    const keep = [
      'notes.txt',
      '.model-00000002.safetensors.tmp',
      `.checkpoint.json.${process.ppid}.m4x2k9ab.q8z3k1.tmp`, // a live writer's
    ];
    for (const f of [stale('model-00000002.safetensors'), stale(CHECKPOINT_FILE), ...keep]) {
      writeFileSync(path.join(dir, f), 'partial');
    }
    trainer.trainStep(data);
    await trainer.saveCheckpoint(dir);
    expect(readdirSync(dir).sort()).toEqual(
      [CHECKPOINT_FILE, 'model-00000002.safetensors', 'optimizer-00000002.safetensors', ...keep].sort(),
    );
    writeFileSync(path.join(dir, stale('optimizer-00000003.safetensors')), 'partial');
    await trainer.loadCheckpoint(dir);
    expect(readdirSync(dir).some((f) => f.includes('4194305'))).toBe(false);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(keep));
    r.reward.dispose();
    r.backbone.dispose();
    trainer.dispose();
    tf.dispose([data.latents, data.labels, data.conditioning.text]);
  });
});
