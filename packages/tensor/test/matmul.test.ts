import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  linear,
  matMul,
  maxAbsDiff,
  shutdownBackend,
} from '../src/index.js';

/** Reference product in float64 JS. */
function reference(a: number[][][], b: number[][][], ta: boolean, tb: boolean): number[][][] {
  return a.map((A, i) => {
    const B = b[i]!;
    const At = ta ? A[0]!.map((_, c) => A.map((r) => r[c]!)) : A;
    const Bt = tb ? B[0]!.map((_, c) => B.map((r) => r[c]!)) : B;
    return At.map((row) => Bt[0]!.map((_, j) => row.reduce((s, v, k) => s + v * Bt[k]![j]!, 0)));
  });
}

describe.each(backendsUnderTest())('matMul on %s', (backend) => {
  afterAll(() => shutdownBackend());

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('batched product and gradients agree with tf.matMul (transposeA %s, transposeB %s)', async (ta, tb) => {
    await initBackend({ backend });
    const g = new Generator('mm');
    const a = g.normal<tf.Rank.R3>(ta ? [3, 5, 4] : [3, 4, 5]);
    const b = g.normal<tf.Rank.R3>(tb ? [3, 6, 5] : [3, 5, 6]);
    const y = matMul(a, b, ta, tb);
    const want = reference((await a.array()) as number[][][], (await b.array()) as number[][][], ta, tb);
    expect(y.shape).toEqual([3, 4, 6]);
    expect(maxAbsDiff(await y.data(), want.flat(2))).toBeLessThan(1e-4);
    const w = g.normal([3, 4, 6]);
    const ours = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(matMul(x, z, ta, tb), w)))([a, b]);
    const theirs = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z, ta, tb), w)))([
      a,
      b,
    ]);
    for (let i = 0; i < 2; i++)
      expect(maxAbsDiff(await ours[i]!.data(), await theirs[i]!.data())).toBeLessThan(1e-4);
  });

  it('takes the split path for large batched products and still matches tf.matMul with gradients', async () => {
    await initBackend({ backend });
    const g = new Generator('big');
    // 96 * 80 * 72 multiply-adds per batch element: above the split threshold on wasm.
    const a = g.normal<tf.Rank.R3>([2, 80, 96]);
    const b = g.normal<tf.Rank.R3>([2, 72, 80]);
    const w = g.normal([2, 96, 72]);
    const f = (mm: typeof matMul) => (x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(mm(x, z, true, true), w));
    const ours = tf.grads(f(matMul))([a, b]);
    const theirs = tf.grads(f(tf.matMul as typeof matMul))([a, b]);
    expect(
      maxAbsDiff(await matMul(a, b, true, true).data(), await tf.matMul(a, b, true, true).data()),
    ).toBeLessThan(1e-3);
    for (let i = 0; i < 2; i++)
      expect(maxAbsDiff(await ours[i]!.data(), await theirs[i]!.data())).toBeLessThan(1e-3);
  });

  it('linear flattens leading axes and adds the bias', async () => {
    await initBackend({ backend });
    const g = new Generator('lin');
    const x = g.normal([2, 3, 4]);
    const w = g.normal<tf.Rank.R2>([4, 5]);
    const bias = g.normal<tf.Rank.R1>([5]);
    const y = linear(x, w, bias);
    const want = tf.add(tf.matMul(tf.reshape(x, [6, 4]), w), bias);
    expect(y.shape).toEqual([2, 3, 5]);
    expect(maxAbsDiff(await y.data(), await want.data())).toBeLessThan(1e-5);
  });

  it('names the shapes when they do not multiply', async () => {
    await initBackend({ backend });
    expect(() => matMul(tf.zeros([2, 3]), tf.zeros([4, 5]))).toThrow(
      /\[2, 3\] and \[4, 5\] do not multiply \(inner 3 vs 4\)/,
    );
    expect(() => linear(tf.zeros([2, 3]), tf.zeros([4, 5]) as tf.Tensor2D)).toThrow(
      /needs a weight \[3, N\], got \[4, 5\]/,
    );
  });

  it('leaks no tensors', async () => {
    await initBackend({ backend });
    const a = tf.ones([2, 8, 8]);
    const b = tf.ones([2, 8, 8]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const gs = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(matMul(x, z, false, true)))([a, b]);
      tf.dispose(gs);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
