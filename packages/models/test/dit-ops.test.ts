import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, Generator, initBackend, shutdownBackend, timestep } from '@prfl/tensor';
import {
  applyRope,
  attention,
  geluTanh,
  layerNorm,
  patchify,
  rmsNorm,
  ropeTables,
  unpatchify,
  wanDiTConfig,
  WanDiT,
} from '../src/index.js';
import { maxDiff } from './fixtures.js';

/** Value and gradient (of sum(f(x) * w)) of two implementations, max abs differences. */
async function compare(
  f: (x: tf.Tensor) => tf.Tensor,
  g: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  w: tf.Tensor,
) {
  const value = await maxDiff(f(x), g(x));
  const loss = (h: (x: tf.Tensor) => tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(h(t), w)))(x);
  return { value, grad: await maxDiff(loss(f), loss(g)) };
}

describe.each(backendsUnderTest())('Wan DiT ops on %s', (backend) => {
  let g: Generator;
  beforeAll(async () => {
    await initBackend({ backend });
    g = new Generator('ops');
  });
  afterAll(() => shutdownBackend());

  it('the patch embedding is Wan’s Conv3d (kernel = stride = patch) and unpatchify inverts patchify', async () => {
    const model = new WanDiT({ ...wanDiTConfig('tiny'), patchSize: [2, 2, 2], numLayers: 0 });
    const x = g.normal<tf.Rank.R5>([2, 4, 6, 4, 16]);
    const { tokens, context } = model.embed(x, [timestep(1), timestep(2)], { text: g.normal([2, 3, 32]) });
    const w = model.namedVariables().get('patch_embedding.weight') as tf.Tensor5D;
    const conv = tf.add(
      tf.conv3d(x, w, [2, 2, 2], 'valid'),
      model.namedVariables().get('patch_embedding.bias')!,
    );
    expect(conv.shape).toEqual([2, 2, 3, 2, 64]);
    expect(await maxDiff(tokens, tf.reshape(conv, [2, 12, 64]))).toBeLessThan(1e-5);
    const p = patchify(x, [2, 2, 2]);
    expect(await maxDiff(unpatchify(p, [2, 3, 2], [2, 2, 2], 16), x)).toBe(0);
    context.dispose();
    model.dispose();
  });

  it('RoPE equals the complex rotation of interleaved pairs, per frame/height/width part', async () => {
    const heads = 2;
    const headDim = 16; // pairs: frame 4, height 2, width 2
    const grid: [number, number, number] = [2, 3, 2];
    const n = 12;
    const x = g.normal<tf.Rank.R3>([1, n, heads * headDim]);
    const tables = ropeTables(grid, headDim, heads);
    const got = await applyRope(x, tables).data();
    const xs = await x.data();
    let worst = 0;
    for (let t = 0; t < n; t++) {
      const pos = [Math.floor(t / 6), Math.floor(t / 2) % 3, t % 2];
      for (let h = 0; h < heads; h++) {
        for (let p = 0; p < headDim / 2; p++) {
          const [part, j, width] = p < 4 ? [0, p, 8] : p < 6 ? [1, p - 4, 4] : [2, p - 6, 4];
          const angle = (pos[part] as number) * 10000 ** ((-2 * j) / width);
          const i = t * heads * headDim + h * headDim + 2 * p;
          const re = (xs[i] as number) * Math.cos(angle) - (xs[i + 1] as number) * Math.sin(angle);
          const im = (xs[i] as number) * Math.sin(angle) + (xs[i + 1] as number) * Math.cos(angle);
          worst = Math.max(worst, Math.abs(re - (got[i] as number)), Math.abs(im - (got[i + 1] as number)));
        }
      }
    }
    expect(worst).toBeLessThan(1e-5);
    // Its gradient is the inverse rotation of the upstream gradient.
    const w = g.normal([1, n, heads * headDim]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyRope(t as tf.Tensor3D, tables), w)))(x);
    const inverse = { ...tables, sin: tf.neg(tables.sin) as tf.Tensor2D };
    expect(await maxDiff(grad, applyRope(w as tf.Tensor3D, inverse))).toBeLessThan(1e-5);
    // Both ways of swapping pairs (GPU backends use the reverse) give the same values and gradients.
    const r = await compare(
      (t) => applyRope(t as tf.Tensor3D, tables, 'matmul'),
      (t) => applyRope(t as tf.Tensor3D, tables, 'reverse'),
      x,
      w,
    );
    expect(r.value).toBeLessThan(1e-6);
    expect(r.grad).toBeLessThan(1e-6);
    tf.dispose([tables.cos, tables.sin, tables.swap]);
  });

  it('batched and per-head attention agree, with and without a key mask, values and gradients', async () => {
    const q = g.normal<tf.Rank.R3>([2, 7, 24]);
    const k = g.normal<tf.Rank.R3>([2, 5, 24]);
    const v = g.normal<tf.Rank.R3>([2, 5, 24]);
    const bias = tf.tensor2d([
      [0, 0, 0, -1e9, -1e9],
      [0, 0, 0, 0, 0],
    ]);
    const w = g.normal([2, 7, 24]);
    for (const kb of [undefined, bias]) {
      const r = await compare(
        (t) => attention(t as tf.Tensor3D, k, v, 3, kb, 'batched'),
        (t) => attention(t as tf.Tensor3D, k, v, 3, kb, 'per-head'),
        q,
        w,
      );
      expect(r.value).toBeLessThan(1e-5);
      expect(r.grad).toBeLessThan(1e-5);
    }
    // Masked keys get no weight: dropping them changes nothing.
    const first = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [1, -1, -1]) as tf.Tensor3D;
    const full = attention(first(q), first(k), first(v), 3, tf.slice(bias, [0, 0], [1, -1]) as tf.Tensor2D);
    const cut = attention(
      first(q),
      tf.slice(first(k), [0, 0, 0], [1, 3, -1]),
      tf.slice(first(v), [0, 0, 0], [1, 3, -1]),
      3,
    );
    expect(await maxDiff(full, cut)).toBeLessThan(1e-6);
  });

  it('the fused norms and GELU have the gradients of their formulas', async () => {
    const x = g.normal([3, 5, 12], 0.5, 2);
    const w = g.normal([3, 5, 12]);
    const weight = g.normal<tf.Rank.R1>([12], 1, 0.3);
    const bias = g.normal<tf.Rank.R1>([12]);
    const plainLn = (t: tf.Tensor) => {
      const c = tf.sub(t, tf.mean(t, -1, true));
      return tf.div(c, tf.sqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-6)));
    };
    const checks = [
      await compare((t) => layerNorm(t, 1e-6), plainLn, x, w),
      await compare(
        (t) => layerNorm(t, 1e-6, weight, bias),
        (t) => tf.add(tf.mul(plainLn(t), weight), bias),
        x,
        w,
      ),
      await compare(
        (t) => rmsNorm(t, 1e-6, weight),
        (t) => tf.mul(tf.div(t, tf.sqrt(tf.add(tf.mean(tf.square(t), -1, true), 1e-6))), weight),
        x,
        w,
      ),
      await compare(
        geluTanh,
        (t) =>
          tf.mul(
            tf.mul(t, 0.5),
            tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(t, tf.mul(0.044715, tf.pow(t, 3)))))),
          ),
        x,
        w,
      ),
    ];
    for (const c of checks) {
      expect(c.value).toBeLessThan(1e-5);
      expect(c.grad).toBeLessThan(1e-4);
    }
    // Parameter gradients of the affine norms.
    const lossW = (f: (p: tf.Tensor) => tf.Tensor) =>
      tf.grad((p: tf.Tensor) => tf.sum(tf.mul(f(p), w)))(weight);
    expect(
      await maxDiff(
        lossW((p) => layerNorm(x, 1e-6, p as tf.Tensor1D, bias)),
        lossW((p) => tf.add(tf.mul(plainLn(x), p), bias)),
      ),
    ).toBeLessThan(1e-4);
    expect(
      await maxDiff(
        lossW((p) => rmsNorm(x, 1e-6, p as tf.Tensor1D)),
        lossW((p) => tf.mul(tf.div(x, tf.sqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), p)),
      ),
    ).toBeLessThan(1e-4);
  });
});
