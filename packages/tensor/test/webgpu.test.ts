/**
 * WebGPU against cpu on the kernels our models lean on (matMul, softmax, normalisation) and their
 * gradients. Runs in Node through Dawn; without a GPU it needs SwiftShader (Debian's chromium) and
 * libvulkan1, which .ci/run installs. Tensors are over 1000 elements and WEBGPU_CPU_FORWARD is off, so
 * the GPU kernels really run. Skipped (loudly) outside CI where no adapter exists.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generator, initBackend, maxAbsDiff, shutdownBackend } from '../src/index.js';

type Case = { name: string; inputs: () => tf.Tensor[]; f: (...xs: tf.Tensor[]) => tf.Tensor; tol: number };

const gen = new Generator(1234);
const a = gen.normalArray(48 * 64);
const b = gen.normalArray(64 * 40);
const c = gen.normalArray(4 * 16 * 96);

function layerNorm(x: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-6)));
}

const cases: Case[] = [
  {
    name: 'matMul',
    inputs: () => [tf.tensor(a, [48, 64]), tf.tensor(b, [64, 40])],
    f: (x, y) => tf.matMul(x!, y!),
    tol: 1e-4,
  },
  {
    name: 'batched matMul (attention scores)',
    inputs: () => [tf.tensor(c, [4, 16, 96]), tf.tensor(c, [4, 16, 96])],
    f: (q, k) => tf.matMul(q!, k!, false, true),
    tol: 1e-3,
  },
  { name: 'softmax', inputs: () => [tf.tensor(c, [4, 16, 96])], f: (x) => tf.softmax(x!), tol: 1e-5 },
  { name: 'layer norm', inputs: () => [tf.tensor(c, [4, 16, 96])], f: (x) => layerNorm(x!), tol: 1e-4 },
  {
    // A per-channel scale and bias on a video latent [B, F, H, W, C] (the VAE's convolution biases and
    // latent statistics): tfjs-backend-webgpu 4.22 cannot compile its shader without the fix in
    // src/ops/webgpu-binary-rank5.ts.
    name: 'rank-5 tensor with a 1-D per-channel operand',
    inputs: () => [
      tf.tensor(c.slice(0, 2 * 3 * 4 * 4 * 16), [2, 3, 4, 4, 16]),
      tf.tensor(c.slice(0, 16), [16]),
    ],
    f: (x, s) => tf.sub(tf.add(tf.mul(x!, s!), s!), tf.div(s!, tf.add(tf.abs(x!), 1))),
    tol: 1e-5,
  },
];

async function evaluate(kase: Case): Promise<{ value: Float32Array; grads: Float32Array[] }> {
  const inputs = kase.inputs();
  const weights = tf.tensor(
    gen.derive(kase.name).normalArray(tf.util.sizeFromShape(kase.f(...inputs).shape)),
    kase.f(...inputs).shape,
  );
  const value = (await kase.f(...inputs).data()) as Float32Array;
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(kase.f(...xs), weights)))(inputs);
  return { value, grads: await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array)) };
}

const inCi = process.env.CI === 'true' || process.env.PRFL_REQUIRE_WEBGPU === '1';
let available = true;
let reason = '';

describe('webgpu matches cpu', () => {
  const expected = new Map<string, { value: Float32Array; grads: Float32Array[] }>();

  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    for (const k of cases) expected.set(k.name, await evaluate(k));
    try {
      const info = await initBackend({ backend: 'webgpu' });
      tf.env().set('WEBGPU_CPU_FORWARD', false);
      console.info(`webgpu adapter: ${JSON.stringify(info.adapter)}`);
    } catch (e) {
      if (inCi) throw e;
      available = false;
      reason = e instanceof Error ? e.message : String(e);
      console.warn(`SKIPPING the WebGPU suite: ${reason}`);
    }
  });
  afterAll(() => shutdownBackend());

  it.each(cases.map((k) => [k.name, k] as const))('%s and its gradient', async (_name, kase) => {
    if (!available) return;
    expect(tf.getBackend()).toBe('webgpu');
    const got = await evaluate(kase);
    const want = expected.get(kase.name)!;
    expect(maxAbsDiff(got.value, want.value)).toBeLessThan(kase.tol);
    for (const [i, g] of got.grads.entries()) {
      expect(maxAbsDiff(g, want.grads[i]!)).toBeLessThan(kase.tol * 10);
    }
  });

  it('the seeded Generator gives the same noise as on cpu', async () => {
    if (!available) return;
    const x = await new Generator(7).normal([3, 500]).data();
    const y = Float32Array.from(new Generator(7).normalArray(1500));
    expect(Array.from(x)).toEqual(Array.from(y));
  });
});
