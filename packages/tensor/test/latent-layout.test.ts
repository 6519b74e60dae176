import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  initBackend,
  latentArrayFromTorch,
  latentArrayToTorch,
  latentsFromTorch,
  latentsToTorch,
  shutdownBackend,
} from '../src/index.js';

/** A [B, C, F, H, W] array whose value spells its own index: 10000 b + 1000 c + 100 f + 10 h + w. */
function torchIndexed(b: number, c: number, f: number, h: number, w: number): Float32Array {
  const out = new Float32Array(b * c * f * h * w);
  let i = 0;
  for (let ib = 0; ib < b; ib++)
    for (let ic = 0; ic < c; ic++)
      for (let iF = 0; iF < f; iF++)
        for (let ih = 0; ih < h; ih++)
          for (let iw = 0; iw < w; iw++) out[i++] = ib * 1e4 + ic * 1e3 + iF * 100 + ih * 10 + iw;
  return out;
}

describe.each(backendsUnderTest())(
  'latent layouts: PyTorch [B, C, F, H, W] / [C, F, H, W] <-> channels last [B, F, H, W, C] on %s',
  (backend) => {
    beforeAll(async () => {
      await initBackend({ backend });
    });
    afterAll(() => shutdownBackend());

    it('tensors: every element lands where its indices say, both directions', async () => {
      const [b, c, f, h, w] = [2, 3, 2, 4, 5];
      const torch = tf.tensor5d(torchIndexed(b, c, f, h, w), [b, c, f, h, w]);
      const ours = latentsFromTorch(torch);
      expect(ours.shape).toEqual([b, f, h, w, c]);
      const v = await ours.array();
      expect(v[1]![0]![3]![2]![1]).toBe(1e4 + 1e3 + 0 + 30 + 2);
      expect(v[0]![1]![2]![4]![2]).toBe(2e3 + 100 + 20 + 4);
      const back = latentsToTorch(ours);
      expect(back.shape).toEqual([b, c, f, h, w]);
      expect(Array.from(await back.data())).toEqual(Array.from(await torch.data()));
      tf.dispose([torch, ours, back]);
    });

    it('tensors: one video [C, F, H, W] gets a batch axis of 1, and { batch: false } drops it again', async () => {
      const video = tf.tensor4d(torchIndexed(1, 3, 2, 2, 2), [3, 2, 2, 2]);
      const ours = latentsFromTorch(video);
      expect(ours.shape).toEqual([1, 2, 2, 2, 3]);
      const back = latentsToTorch(ours, { batch: false });
      expect(back.shape).toEqual([3, 2, 2, 2]);
      expect(Array.from(await back.data())).toEqual(Array.from(await video.data()));
      const two = tf.zeros([2, 1, 1, 1, 3]) as tf.Tensor5D;
      expect(() => latentsToTorch(two, { batch: false })).toThrow(/needs B = 1, got \[2, 1, 1, 1, 3\]/);
      tf.dispose([video, ours, back, two]);
    });

    it('flat arrays: the same permutation as the tensors, the input type kept', async () => {
      const [b, c, f, h, w] = [2, 4, 3, 2, 3];
      const data = torchIndexed(b, c, f, h, w);
      const ours = latentArrayFromTorch(data, [b, c, f, h, w]);
      expect(ours.shape).toEqual([b, f, h, w, c]);
      expect(ours.data).toBeInstanceOf(Float32Array);
      const t = latentsFromTorch(tf.tensor5d(data, [b, c, f, h, w]));
      expect(Array.from(ours.data)).toEqual(Array.from(await t.data()));
      t.dispose();
      const back = latentArrayToTorch(ours.data, ours.shape);
      expect(back.shape).toEqual([b, c, f, h, w]);
      expect(back.data).toEqual(data);
      // One video, and other typed arrays.
      const one = latentArrayFromTorch(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 1, 1, 3]);
      expect(one.shape).toEqual([1, 1, 1, 3, 2]);
      expect(one.data).toBeInstanceOf(Int32Array);
      expect(Array.from(one.data)).toEqual([1, 4, 2, 5, 3, 6]);
      const oneBack = latentArrayToTorch(one.data, one.shape, { batch: false });
      expect(oneBack.shape).toEqual([2, 1, 1, 3]);
      expect(Array.from(oneBack.data)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('names what was expected and what arrived', () => {
      const r3 = tf.zeros([2, 3, 4]);
      expect(() => latentsFromTorch(r3)).toThrow(
        /latentsFromTorch: expected \[C, F, H, W\] or \[B, C, F, H, W\] \(PyTorch layout\) with positive dimensions, got \[2, 3, 4\]/,
      );
      expect(() => latentsToTorch(r3 as unknown as tf.Tensor5D)).toThrow(
        /expected \[B, F, H, W, C\] \(channels last\).*got \[2, 3, 4\]/,
      );
      r3.dispose();
      expect(() => latentArrayFromTorch(new Float32Array(5), [1, 2, 2, 2])).toThrow(
        /the shape \[1, 2, 2, 2\] holds 8 values but the array has 5/,
      );
      expect(() => latentArrayToTorch(new Float32Array(8), [1, 2, 2, 2])).toThrow(
        /expected \[B, F, H, W, C\]/,
      );
      expect(() => latentArrayToTorch(new Float32Array(8), [2, 1, 2, 2, 1], { batch: false })).toThrow(
        /needs B = 1/,
      );
      expect(() => latentArrayFromTorch([1, 2] as unknown as Float32Array, [2, 1, 1, 1])).toThrow(
        /expected a typed array/,
      );
    });
  },
);
