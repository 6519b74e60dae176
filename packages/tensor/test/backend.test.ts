import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, describeBackend, initBackend, shutdownBackend } from '../src/index.js';

describe.each(backendsUnderTest())('backend %s', (name) => {
  afterAll(() => shutdownBackend());

  it('starts, reports itself and computes a gradient', async () => {
    const info = await initBackend({ backend: name });
    expect(info.name).toBe(name);
    expect(tf.getBackend()).toBe(name);
    expect(describeBackend(info)).toContain(name);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)));
    const dx = g(tf.tensor1d([1, 2, 3]));
    expect(Array.from(await dx.data())).toEqual([2, 4, 6]);
  });

  it('differentiates stridedSlice (a gradient tfjs lacks)', async () => {
    await initBackend({ backend: name });
    const x = tf.reshape(tf.range(0, 24, 1, 'float32'), [2, 3, 4]);
    const w = tf.reshape(tf.range(1, 7, 1, 'float32'), [2, 1, 3]);
    const f = (t: tf.Tensor) =>
      tf.sum(tf.mul(tf.stridedSlice(t, [0, 1, 0], [2, 2, 4], [1, 1, 2]), tf.slice(w, [0, 0, 0], [2, 1, 2])));
    const dx = (await tf.grad(f)(x).array()) as number[][][];
    // selected elements: i in {0,1}, j = 1, k in {0, 2}; each gets the matching weight.
    const expected = Array.from({ length: 2 }, (_, i) =>
      Array.from({ length: 3 }, (_, j) =>
        Array.from({ length: 4 }, (_, k) => (j === 1 && k % 2 === 0 ? i * 3 + k / 2 + 1 : 0)),
      ),
    );
    expect(dx).toEqual(expected);
  });
});

describe('initBackend errors', () => {
  it('rejects an unknown backend name with the accepted names', async () => {
    await expect(initBackend({ backend: 'tpu' as never })).rejects.toThrow(
      /expected one of webgpu, wasm, cpu, auto, got "tpu"/,
    );
  });
});

describe('initBackend auto in Node', () => {
  afterAll(() => shutdownBackend());
  it('does not settle for a software GPU and says why it skipped webgpu', async () => {
    const info = await initBackend();
    if (info.name === 'webgpu') {
      expect(info.adapter?.software).toBe(false);
      return;
    }
    expect(info.name).toBe('wasm');
    expect(info.skipped[0]?.name).toBe('webgpu');
    expect(info.skipped[0]?.reason).toMatch(
      /no GPU device|software adapter|no WebGPU adapter|needs the package/,
    );
  });
});
