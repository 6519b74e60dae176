/** The pixel-space baseline reward: contract, gradients through the frames, BCE training, file round trip. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  assertNoLeak,
  backendsUnderTest,
  Generator,
  initBackend,
  loadSafetensors,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  disposeBatch,
  evaluateBySigmaBucket,
  loadPixelReward,
  PavrmTrainer,
  PixelVideoReward,
  savePixelReward,
  tensorPointwiseSource,
} from '../src/index.js';
import { motionLatentBatch } from '../src/toy/index.js';

/** "Decoded frames": motion videos rendered with 3 channels at 8 x 8, values in [-1, 1]. */
function frames(seed: string, n: number) {
  const b = motionLatentBatch(new Generator(seed), n, { channels: 3, size: 8, frames: 4 });
  const clipped = tf.tidy(() => tf.clipByValue(tf.sub(tf.div(b.latents, 1.5), 0.2), -1, 1)) as tf.Tensor5D;
  b.latents.dispose();
  return { ...b, latents: clipped };
}

describe.each(backendsUnderTest())('PixelVideoReward on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });

  it('scores frames [B, F, H, W, 3] with logits [B] and passes gradients back to the pixels', async () => {
    const model = new PixelVideoReward(
      {
        channels: [8, 8],
        strides: [
          [1, 2, 2],
          [2, 2, 2],
        ],
        hidden: 16,
      },
      { seed: 1 },
    );
    const batch = frames('a', 3);
    const ts = [timestep(0), timestep(0), timestep(0)];
    const logits = model.score(batch.latents, ts);
    expect(logits.shape).toEqual([3]);
    const dFrames = tf.grad((x: tf.Tensor) => tf.sum(model.score(x as tf.Tensor5D, ts)))(batch.latents);
    expect(dFrames.shape).toEqual(batch.latents.shape);
    expect(Math.max(...Array.from(await tf.abs(dFrames).data()))).toBeGreaterThan(0);
    const { grads } = tf.variableGrads(() => tf.sum(model.score(batch.latents, ts)) as tf.Scalar);
    expect(Object.keys(grads)).toHaveLength(8);
    expect(() => model.score(tf.zeros([1, 4, 8, 8, 4]) as tf.Tensor5D, [timestep(0)])).toThrow(
      /frames: expected 3 channels \(last axis\), got \[1, 4, 8, 8, 4\]/,
    );
    tf.dispose([logits, dFrames, ...Object.values(grads)]);
    disposeBatch(batch);
    model.dispose();
  });

  it('trains with the same BCE step (no noise) and learns the motion label; saves in PyTorch layout', async () => {
    const model = new PixelVideoReward(
      {
        channels: [8, 16],
        strides: [
          [1, 2, 2],
          [2, 2, 2],
        ],
        hidden: 32,
      },
      { seed: 2 },
    );
    const train = frames('train', 256);
    const test = frames('test', 64);
    const trainer = new PavrmTrainer(model, {
      lrHead: 3e-3,
      seed: 1,
      sigmaSampler: { kind: 'fixed', sigma: 0 },
    });
    expect(trainer.optimizer.groups.map((g) => g.name)).toEqual(['model']);
    await trainer.fit(tensorPointwiseSource(train), { epochs: 2, batchSize: 16, maxSteps: 32 });
    // Clean frames: one bucket at sigma ~ 0.
    const e = await evaluateBySigmaBucket(model, test, {
      buckets: [{ low: 0, high: 1e-6, includeLow: true }],
    });
    expect(e.buckets[0]!.accuracy).toBeGreaterThan(0.75);
    await assertNoLeak(
      () => {
        trainer.trainStep(test);
      },
      { label: 'pixel reward step' },
    );

    const dir = mkdtempSync(path.join(tmpdir(), 'prfl-pixel-'));
    dirs.push(dir);
    const file = path.join(dir, 'pixel.safetensors');
    await savePixelReward(model, file);
    const stored = await loadSafetensors(file);
    expect(stored['conv1.weight']!.shape).toEqual([8, 3, 3, 3, 3]);
    expect(stored['conv2.weight']!.shape).toEqual([16, 8, 3, 3, 3]);
    expect(stored['fc1.weight']!.shape).toEqual([32, 16]);
    const loaded = await loadPixelReward(file);
    const ts = test.ids.map(() => timestep(0));
    expect(Array.from(await loaded.score(test.latents, ts).data())).toEqual(
      Array.from(await model.score(test.latents, ts).data()),
    );
    tf.dispose(Object.values(stored));
    disposeBatch(train);
    disposeBatch(test);
    trainer.dispose();
    model.dispose();
    loaded.dispose();
  });
});
