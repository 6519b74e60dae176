/**
 * PixelVideoReward's gradients on wasm against the cpu backend, and their independence from what the
 * process did before. Regression: the reward used to differentiate tf.conv3d, whose wasm gradient kernels
 * (tfjs-backend-wasm 4.22) are wrong and read the wasm heap outside the filter, so training on wasm took
 * wrong steps and stopped on a NaN gradient once freed memory held NaN (the first step of a second epoch
 * of `prfl train-reward --space pixel`, depending on the run's history).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  maxAbsDiff,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { PixelVideoReward } from '../src/index.js';

const CONFIG = {
  channels: [4, 8],
  strides: [
    [1, 2, 2],
    [2, 2, 2],
  ] as [number, number, number][],
  hidden: 8,
};
const FRAMES: [number, number, number, number, number] = [2, 5, 12, 12, 3];

/** Logits, the gradient of the BCE loss for every variable (by stable name), and the frames' gradient. */
function gradients(dirtyHeap: boolean): Record<string, Float32Array> {
  const model = new PixelVideoReward(CONFIG, { seed: 3 });
  try {
    return tf.tidy(() => {
      const g = new Generator('pixel-grad');
      const frames = tf.clipByValue(g.normal<tf.Rank.R5>(FRAMES), -1, 1) as tf.Tensor5D;
      const labels = tf.tensor1d([1, 0]);
      const ts = [timestep(0), timestep(0)];
      if (dirtyHeap) {
        // What an earlier step can leave behind: freed heap memory full of NaN.
        const junk = tf.fill([1 << 20], Number.NaN);
        junk.dataSync();
        junk.dispose();
      }
      const loss = (x: tf.Tensor5D) => tf.losses.sigmoidCrossEntropy(labels, model.score(x, ts)) as tf.Scalar;
      const vars = model.namedVariables();
      const { grads } = tf.variableGrads(() => loss(frames), [...vars.values()]);
      const dFrames = tf.grad((x: tf.Tensor) => loss(x as tf.Tensor5D))(frames);
      const out: Record<string, Float32Array> = {
        logits: model.score(frames, ts).dataSync() as Float32Array,
        frames: dFrames.dataSync() as Float32Array,
      };
      for (const [name, v] of vars) out[name] = (grads[v.name] as tf.Tensor).dataSync() as Float32Array;
      return out;
    });
  } finally {
    model.dispose();
  }
}

describe.runIf(backendsUnderTest().includes('wasm'))('PixelVideoReward gradients on wasm', () => {
  afterAll(() => shutdownBackend());

  it('match the cpu backend for every variable and the frames, whatever the heap held before', async () => {
    await initBackend({ backend: 'cpu' });
    const reference = gradients(false);
    await initBackend({ backend: 'wasm' });
    const clean = gradients(false);
    const dirty = gradients(true);
    expect(Object.keys(clean).sort()).toEqual(Object.keys(reference).sort());
    for (const [name, want] of Object.entries(reference)) {
      const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
      for (const [label, got] of [
        ['clean heap', clean[name] as Float32Array],
        ['heap left full of NaN', dirty[name] as Float32Array],
      ] as const) {
        expect(
          got.every((v) => Number.isFinite(v)),
          `${name} (${label}) is finite`,
        ).toBe(true);
        expect(maxAbsDiff(got, want) / scale, `${name} (${label}) vs cpu`).toBeLessThan(1e-3);
      }
    }
  });
});
