import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  InvalidArgumentError,
  initBackend,
  PrflError,
  shutdownBackend,
} from '../src/index.js';
import { AdamW, clipByGlobalNorm, GradientAccumulator } from '../src/optim/index.js';

describe.each(backendsUnderTest())('GradientAccumulator on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterEach(() => {
    tf.disposeVariables();
  });
  afterAll(async () => {
    await shutdownBackend();
  });

  it('averages over the window (default) and says when it is full', () => {
    const acc = new GradientAccumulator({ steps: 3 });
    expect([acc.windowSize, acc.reduction, acc.count, acc.isFull]).toEqual([3, 'mean', 0, false]);
    const micro = [
      { w: tf.tensor1d([1, 2]), b: tf.scalar(3) },
      { w: tf.tensor1d([3, 4]) }, // b missing: counts as zero
      { w: tf.tensor1d([5, 9]), b: tf.scalar(6) },
    ];
    expect(micro.map((g) => acc.add(g))).toEqual([false, false, true]);
    expect(acc.isFull).toBe(true);
    // The accumulator copied what it needs: the caller may dispose its micro-batch grads at once.
    for (const g of micro) tf.dispose(Object.values(g));
    const out = acc.take();
    expect(Array.from((out.w as tf.Tensor).dataSync())).toEqual([3, 5]);
    expect((out.b as tf.Tensor).dataSync()[0]).toBe(3); // (3 + 0 + 6) / 3
    expect([acc.count, acc.isFull]).toEqual([0, false]);
    tf.dispose(Object.values(out));
    acc.dispose();
  });

  it('sums with reduction sum', () => {
    const acc = new GradientAccumulator({ steps: 2, reduction: 'sum' });
    const a = tf.tensor1d([1, 2]);
    const b = tf.tensor1d([10, 20]);
    acc.add(new Map([['w', a]]));
    acc.add({ w: b });
    const out = acc.take();
    expect(Array.from((out.w as tf.Tensor).dataSync())).toEqual([11, 22]);
    tf.dispose([a, b, ...Object.values(out)]);
  });

  it('refuses a second update at the same boundary: add on a full window and take on a partial one throw', () => {
    const acc = new GradientAccumulator({ steps: 2 });
    const g = { w: tf.ones([2]) };
    expect(() => acc.take()).toThrow(/no micro-batches/);
    acc.add(g);
    expect(() => acc.take()).toThrow(/has 1 of 2 micro-batches/);
    acc.add(g);
    expect(() => acc.add(g)).toThrow(PrflError);
    expect(() => acc.add(g)).toThrow(/window of 2 micro-batches is full/);
    expect(acc.count).toBe(2);
    const out = acc.take();
    expect(() => acc.take()).toThrow(/no micro-batches/); // one take per window
    tf.dispose([g.w, ...Object.values(out)]);
    acc.dispose();
  });

  it('takes a partial window on request, averaging over the micro-batches actually added', () => {
    const acc = new GradientAccumulator({ steps: 4 });
    const a = tf.tensor1d([2, 4]);
    const b = tf.tensor1d([4, 8]);
    acc.add({ w: a });
    acc.add({ w: b });
    const out = acc.take({ partial: true });
    expect(Array.from((out.w as tf.Tensor).dataSync())).toEqual([3, 6]);
    tf.dispose([a, b, ...Object.values(out)]);
    acc.dispose();
  });

  it('rejects bad options and mismatched gradients', () => {
    expect(() => new GradientAccumulator({ steps: 0 })).toThrow(InvalidArgumentError);
    expect(() => new GradientAccumulator({ steps: 1.5 })).toThrow(/integer >= 1/);
    expect(() => new GradientAccumulator({ steps: 2, reduction: 'max' as never })).toThrow(/reduction/);
    const acc = new GradientAccumulator({ steps: 3 });
    const a = tf.ones([2, 3]);
    const b = tf.ones([3, 2]);
    acc.add({ w: a });
    expect(() => acc.add({ w: b })).toThrow(/'w' has shape \[3, 2\] but earlier micro-batches had \[2, 3\]/);
    expect(acc.count).toBe(1);
    const before = tf.memory().numTensors;
    acc.reset();
    expect(tf.memory().numTensors).toBe(before - 1);
    expect(acc.count).toBe(0);
    acc.dispose();
    expect(() => acc.add({ w: a })).toThrow(/disposed/);
    tf.dispose([a, b]);
  });

  it('gives exactly one optimizer update per window, equal to one step on the mean gradient', () => {
    const k = 3;
    const windows = 4;
    const xs = Array.from({ length: k * windows }, (_, i) =>
      tf.randomNormal([4, 5], 0, 1, 'float32', 10 + i),
    );
    const w1 = tf.variable(tf.randomNormal([5, 2], 0, 1, 'float32', 1), true, 'acc.w');
    const w2 = tf.variable(tf.clone(w1), true, 'ref.w');
    const loss = (x: tf.Tensor, w: tf.Variable) => () => tf.mean(tf.square(tf.matMul(x, w))) as tf.Scalar;

    const opt = new AdamW([w1], { lr: 1e-2 });
    const acc = new GradientAccumulator({ steps: k });
    const counts: number[] = [];
    for (const x of xs) {
      const { value, grads } = tf.variableGrads(loss(x, w1), [w1]);
      value.dispose();
      if (acc.add(grads)) {
        const g = acc.take();
        const clipped = clipByGlobalNorm(g, 1.0);
        opt.step(clipped.grads);
        tf.dispose([...Object.values(g), ...Object.values(clipped.grads)]);
      }
      tf.dispose(Object.values(grads));
      counts.push(tf.memory().numTensors);
    }
    expect(opt.stepCount).toBe(windows);
    // Memory is flat from window to window (compare the same position in each window).
    expect(new Set(counts.filter((_, i) => i % k === k - 1)).size).toBe(1);

    // Reference: average the k micro-batch gradients by hand, one step per window.
    const ref = new AdamW([w2], { lr: 1e-2 });
    for (let wi = 0; wi < windows; wi++) {
      const g = tf.tidy(() => {
        const parts = xs
          .slice(wi * k, wi * k + k)
          .map((x) => tf.variableGrads(loss(x, w2), [w2]).grads['ref.w']);
        return tf.div(tf.addN(parts as tf.Tensor[]), k);
      });
      const clipped = clipByGlobalNorm({ 'ref.w': g }, 1.0);
      ref.step(clipped.grads);
      tf.dispose([g, ...Object.values(clipped.grads)]);
    }
    const a = w1.dataSync();
    const b = w2.dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i] as number, 6);
    opt.dispose();
    ref.dispose();
    acc.dispose();
    tf.dispose(xs);
  });
});
