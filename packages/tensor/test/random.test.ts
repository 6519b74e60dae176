import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, Generator, initBackend, seededNoise, shutdownBackend } from '../src/index.js';

describe('Generator', () => {
  it('is reproducible from a seed and differs across seeds and labels', () => {
    const a = new Generator(42).normalArray(1000);
    expect(Array.from(new Generator(42).normalArray(1000))).toEqual(Array.from(a));
    expect(Array.from(new Generator(43).normalArray(10))).not.toEqual(Array.from(a.slice(0, 10)));
    const g = new Generator(42);
    expect(Array.from(g.derive('noise').normalArray(10))).toEqual(
      Array.from(new Generator(42).derive('noise').normalArray(10)),
    );
    expect(Array.from(g.derive('noise').normalArray(10))).not.toEqual(
      Array.from(g.derive('sigma').normalArray(10)),
    );
  });

  it('uses both halves of a 53-bit seed', () => {
    const lo = new Generator(5).nextUint32();
    expect(new Generator(5 + 2 ** 40).nextUint32()).not.toBe(lo);
  });

  it('has standard normal moments and uniform range', () => {
    const x = new Generator('moments').normalArray(200_000);
    let m = 0;
    let v = 0;
    for (const t of x) m += t;
    m /= x.length;
    for (const t of x) v += (t - m) ** 2;
    v /= x.length;
    expect(Math.abs(m)).toBeLessThan(0.01);
    expect(Math.abs(v - 1)).toBeLessThan(0.01);
    const u = new Generator('u').uniformArray(10_000, -2, 3);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
  });

  it('saves and restores its position', () => {
    const g = new Generator(9);
    g.normalArray(17);
    const state = g.getState();
    const next = g.normalArray(5);
    g.setState(state);
    expect(Array.from(g.normalArray(5))).toEqual(Array.from(next));
    expect(() => g.setState({ s: [0, 0, 0, 0] })).toThrow(/all-zero/);
    expect(() => g.setState({ s: [1, 2] } as never)).toThrow(/four uint32 words/);
  });

  it('draws permutations and bounded integers', () => {
    const p = new Generator(3).permutation(50);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const g = new Generator(4);
    for (let i = 0; i < 1000; i++) {
      const k = g.nextInt(7);
      expect(k >= 0 && k < 7 && Number.isInteger(k)).toBe(true);
    }
    expect(() => g.nextInt(0)).toThrow(/positive integer bound, got 0/);
    expect(() => new Generator(1.5)).toThrow(/safe integer or a string, got 1.5/);
  });
});

describe.each(backendsUnderTest())('Generator tensors on %s', (backend) => {
  afterAll(() => shutdownBackend());
  it('gives the same noise on every backend (values made in JS)', async () => {
    await initBackend({ backend });
    const t = new Generator(11).normal([2, 3, 4, 5, 6]);
    expect(t.shape).toEqual([2, 3, 4, 5, 6]);
    expect(t.dtype).toBe('float32');
    expect(Array.from(await t.data())).toEqual(Array.from(new Generator(11).normalArray(720)));
    expect(() => new Generator(1).normal([2, -1])).toThrow(/non-negative integers, got \[2, -1\]/);
    t.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it('seededNoise stacks one seed per row, each row the seed alone, and keeps nothing else', async () => {
    await initBackend({ backend });
    const batch = seededNoise(['a', 'b'], [3, 4]);
    expect(batch.shape).toEqual([2, 3, 4]);
    expect(tf.memory().numTensors).toBe(1);
    const values = Array.from(await batch.data());
    expect(values.slice(0, 12)).toEqual(Array.from(new Generator('a').normalArray(12)));
    expect(values.slice(12)).toEqual(Array.from(new Generator('b').normalArray(12)));
    batch.dispose();
    expect(() => seededNoise([], [3])).toThrow(/expected at least one seed, got none/);
  });
});
