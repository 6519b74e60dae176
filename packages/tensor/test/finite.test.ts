import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertFiniteTensor,
  assertFiniteTensors,
  backendsUnderTest,
  initBackend,
  shutdownBackend,
} from '../src/index.js';

describe.each(backendsUnderTest())('assertFiniteTensor(s) on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it('passes finite tensors and leaves nothing behind', () => {
    const a = tf.ones([2, 3]);
    const i = tf.tensor1d([1, 2], 'int32');
    const before = tf.memory().numTensors;
    assertFiniteTensor('a', a);
    assertFiniteTensors([
      ['a', a],
      ['i', i],
      ['absent', undefined],
    ]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, i]);
  });

  it('names the tensor, the counts and the first bad element', () => {
    const ok = tf.zeros([2]);
    const bad = tf.tensor2d([
      [0, Number.NaN],
      [Number.POSITIVE_INFINITY, Number.NaN],
    ]);
    expect(() => assertFiniteTensor('x', bad)).toThrow(
      /x: expected finite values, got 2 NaN and 1 Inf in a \[2, 2\] tensor \(first at flat index 1: NaN\)/,
    );
    expect(() =>
      assertFiniteTensors([
        ['x', ok],
        ['conditioning.text', bad],
      ]),
    ).toThrow(/^conditioning\.text: expected finite values/);
    tf.dispose([ok, bad]);
  });
});
