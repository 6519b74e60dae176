import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, InvalidArgumentError, initBackend, shutdownBackend } from '../src/index.js';
import { clipByGlobalNorm, NonFiniteGradientError } from '../src/optim/index.js';

/** The clip_grad_norm_ cases of fixtures/adamw/adamw.json (scripts/make-adamw-fixture.py, torch, float32). */
interface ClipCase {
  name: string;
  max_norm: number;
  norm_type: 2 | 'inf';
  shapes: number[][];
  grads: number[][];
  total_norm: number;
  clipped: number[][];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/adamw/adamw.json', import.meta.url), 'utf8'),
) as {
  clip: ClipCase[];
};

function maxRelErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  expect(actual.length).toBe(expected.length);
  let m = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const a = actual[i] as number;
    m = Math.max(m, e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e));
  }
  return m;
}

const measured: string[] = [];

describe.each(backendsUnderTest())('clipByGlobalNorm on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(async () => {
    await shutdownBackend();
  });

  it.each(fixture.clip.map((c) => [c.name, c] as const))('matches torch clip_grad_norm_ (%s)', (name, c) => {
    const grads = Object.fromEntries(c.grads.map((g, i) => [`g${i}`, tf.tensor(g, c.shapes[i])]));
    const before = tf.memory().numTensors;
    const { grads: clipped, totalNorm } = clipByGlobalNorm(grads, c.max_norm, { normType: c.norm_type });
    expect(tf.memory().numTensors).toBe(before + c.grads.length); // only the returned tensors
    const normErr = Math.abs(totalNorm - c.total_norm) / c.total_norm;
    let gradErr = 0;
    c.clipped.forEach((expected, i) => {
      gradErr = Math.max(gradErr, maxRelErr((clipped[`g${i}`] as tf.Tensor).dataSync(), expected));
    });
    // The inputs are untouched and still alive.
    c.grads.forEach((g, i) => {
      expect(Array.from((grads[`g${i}`] as tf.Tensor).dataSync())).toEqual(g.map(Math.fround));
    });
    tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
    measured.push(
      `${backend} ${name}: total norm rel err ${normErr.toExponential(2)}, clipped grads ${gradErr.toExponential(2)}`,
    );
    expect(normErr).toBeLessThanOrEqual(1e-6);
    expect(gradErr).toBeLessThanOrEqual(1e-6);
  });

  it('returns new tensors and norm 0 for no gradients; accepts Maps and skips null entries', () => {
    expect(clipByGlobalNorm({}, 1)).toEqual({ grads: {}, totalNorm: 0 });
    const a = tf.tensor1d([3, 4]);
    const { grads, totalNorm } = clipByGlobalNorm(
      new Map([
        ['a', a],
        ['none', null],
      ]),
      10,
    );
    expect(totalNorm).toBeCloseTo(5, 5);
    expect(Object.keys(grads)).toEqual(['a']);
    expect(grads.a).not.toBe(a);
    expect(Array.from((grads.a as tf.Tensor).dataSync())).toEqual([3, 4]); // coefficient clamped to 1
    tf.dispose([a, grads.a as tf.Tensor]);
  });

  it('reports non-finite norms, or throws with errorIfNonfinite (without leaking)', () => {
    const a = tf.tensor1d([1, Number.NaN]);
    const b = tf.tensor1d([1, 2]);
    const r = clipByGlobalNorm({ a, b }, 1);
    expect(Number.isNaN(r.totalNorm)).toBe(true);
    tf.dispose(Object.values(r.grads));
    const before = tf.memory().numTensors;
    expect(() => clipByGlobalNorm({ a, b }, 1, { errorIfNonfinite: true })).toThrow(NonFiniteGradientError);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });

  it('rejects bad arguments', () => {
    const a = tf.tensor1d([1, 2]);
    expect(() => clipByGlobalNorm({ a }, Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => clipByGlobalNorm({ a }, -1)).toThrow(/maxNorm/);
    expect(() => clipByGlobalNorm({ a }, 1, { normType: 1 as never })).toThrow(/normType/);
    const i = tf.tensor1d([1, 2], 'int32');
    expect(() => clipByGlobalNorm({ i }, 1)).toThrow(/'i' is int32/);
    tf.dispose([a, i]);
  });

  it('leaks no tensors over 20 calls', () => {
    const g = {
      w: tf.randomNormal([16, 8], 0, 3, 'float32', 3),
      b: tf.randomNormal([8], 0, 3, 'float32', 4),
    };
    const counts: number[] = [];
    for (let k = 0; k < 20; k++) {
      const r = clipByGlobalNorm(g, 0.5);
      tf.dispose(Object.values(r.grads));
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    tf.dispose(Object.values(g));
  });
});

afterAll(() => {
  console.log(`clipByGlobalNorm vs torch clip_grad_norm_ (float32):\n  ${measured.join('\n  ')}`);
});
