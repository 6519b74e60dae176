import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, Generator, initBackend, shutdownBackend } from '../src/index.js';

// initBackend installs the heap-view Slice/SplitV on wasm; it must give exactly what cpu gives.
describe.skipIf(!backendsUnderTest().includes('wasm'))('fast wasm Slice and SplitV', () => {
  afterAll(() => shutdownBackend());

  it('slice and split every rank, contiguous or strided, float32, int32 and bool, as cpu does', async () => {
    const g = new Generator('slices');
    const cases: Array<[number[], number[], number[]]> = [
      [[7], [2], [4]],
      [
        [5, 6],
        [1, 2],
        [3, 3],
      ],
      [
        [5, 6],
        [2, 0],
        [2, 6],
      ],
      [
        [3, 4, 5],
        [1, 1, 1],
        [2, 2, 3],
      ],
      [
        [2, 3, 4, 5],
        [0, 1, 0, 2],
        [2, 2, 4, 2],
      ],
      [
        [2, 2, 3, 4, 6],
        [1, 0, 1, 1, 3],
        [1, 2, 2, 3, 3],
      ],
      [
        [2, 3, 4, 5, 2, 3],
        [0, 1, 1, 2, 1, 0],
        [2, 2, 3, 2, 1, 3],
      ],
    ];
    const run = () =>
      cases.flatMap(([shape, begin, size]) => {
        const x = g.derive(shape.join()).normal(shape);
        const ints = tf.cast(tf.mul(x, 10), 'int32');
        const bools = tf.greater(x, 0);
        const out = [x, ints, bools].map((t) => Array.from(tf.slice(t, begin, size).dataSync()));
        for (let axis = 0; axis < shape.length; axis++) {
          const n = shape[axis] as number;
          const sizes = n > 2 ? [1, n - 3, 2] : [n];
          for (const part of tf.split(x, sizes, axis)) out.push(Array.from(part.dataSync()));
        }
        return out;
      });
    await initBackend({ backend: 'cpu' });
    const reference = run();
    await initBackend({ backend: 'wasm' });
    const fast = run();
    await initBackend({ backend: 'wasm' }); // installing twice is harmless
    expect(fast).toEqual(reference);
    expect(run()).toEqual(reference);
  });
});
