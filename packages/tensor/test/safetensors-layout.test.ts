import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, shutdownBackend } from '../src/backend.js';
import { InvalidArgumentError } from '../src/errors.js';
import {
  conv1dWeightFromTorch,
  conv1dWeightToTorch,
  conv2dWeightFromTorch,
  conv2dWeightToTorch,
  conv3dWeightFromTorch,
  conv3dWeightToTorch,
  linearWeightFromTorch,
  linearWeightToTorch,
  loadSafetensors,
} from '../src/safetensors/index.js';
import { backendsUnderTest } from '../src/testing/backends.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/safetensors/', import.meta.url));

interface LayoutCase {
  weight: string;
  input_shape: number[];
  input_bits: number[];
  output_shape: number[];
  output_bits: number[];
  tfjs_weight_shape: number[];
  tfjs_weight_bits: number[];
}
const layout = (
  JSON.parse(await readFile(`${FIXTURES}expected.json`, 'utf8')) as { layout: Record<string, LayoutCase> }
).layout;

function fromBits(bits: number[], shape: number[]): tf.Tensor {
  return tf.tensor(new Float32Array(new Uint32Array(bits).buffer), shape, 'float32');
}

async function bitsOf(t: tf.Tensor): Promise<number[]> {
  const data = (await t.data()) as Float32Array;
  return Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length));
}

describe.each(backendsUnderTest())('PyTorch weight layouts on %s', (backend) => {
  let weights: Record<string, tf.Tensor>;
  beforeAll(async () => {
    await initBackend({ backend });
    weights = await loadSafetensors(`${FIXTURES}f32.safetensors`);
  });
  afterAll(() => shutdownBackend());

  // Each case: convert the torch weight, compare with torch's own permutation, run the tfjs op on the
  // same (integer-valued, so exact) input as torch and compare outputs, then convert back.
  const cases: Array<{
    key: string;
    from: (w: tf.Tensor) => tf.Tensor;
    to: (w: tf.Tensor) => tf.Tensor;
    run: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
  }> = [
    {
      key: 'linear',
      from: linearWeightFromTorch,
      to: linearWeightToTorch,
      run: (x, w) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), weights['linear.bias']!),
    },
    {
      key: 'conv1d',
      from: conv1dWeightFromTorch,
      to: conv1dWeightToTorch,
      // torch [N, C, W] <-> tfjs [N, W, C]
      run: (x, w) =>
        tf.transpose(
          tf.conv1d(tf.transpose(x, [0, 2, 1]) as tf.Tensor3D, w as tf.Tensor3D, 1, 'valid'),
          [0, 2, 1],
        ),
    },
    {
      key: 'conv2d',
      from: conv2dWeightFromTorch,
      to: conv2dWeightToTorch,
      run: (x, w) =>
        tf.transpose(
          tf.conv2d(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'),
          [0, 3, 1, 2],
        ),
    },
    {
      key: 'conv3d',
      from: conv3dWeightFromTorch,
      to: conv3dWeightToTorch,
      run: (x, w) =>
        tf.transpose(
          tf.conv3d(tf.transpose(x, [0, 2, 3, 4, 1]) as tf.Tensor5D, w as tf.Tensor5D, 1, 'valid'),
          [0, 4, 1, 2, 3],
        ),
    },
  ];

  for (const c of cases) {
    it(`${c.key}: matches torch's permutation and layer output, and converts back`, async () => {
      const spec = layout[c.key]!;
      const before = tf.memory().numTensors;
      const torchWeight = weights[spec.weight]!;
      const w = c.from(torchWeight);
      expect(w.shape).toEqual(spec.tfjs_weight_shape);
      expect(await bitsOf(w)).toEqual(spec.tfjs_weight_bits);
      const x = fromBits(spec.input_bits, spec.input_shape);
      const y = tf.tidy(() => c.run(x, w));
      expect(y.shape).toEqual(spec.output_shape);
      expect(await bitsOf(y)).toEqual(spec.output_bits);
      const back = c.to(w);
      expect(back.shape).toEqual(torchWeight.shape);
      expect(await bitsOf(back)).toEqual(await bitsOf(torchWeight));
      tf.dispose([w, x, y, back]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('rejects weights of the wrong rank, naming the layout', () => {
    const w = tf.zeros([2, 3, 4]);
    expect(() => linearWeightFromTorch(w)).toThrow(InvalidArgumentError);
    expect(() => linearWeightFromTorch(w)).toThrow(
      'linearWeightFromTorch: expected a rank-2 weight [out, in], got rank 3 [2, 3, 4]',
    );
    expect(() => conv3dWeightFromTorch(w)).toThrow(
      /expected a rank-5 weight \[out, in, t, h, w\], got rank 3/,
    );
    expect(() => conv3dWeightToTorch(w)).toThrow(/\[t, h, w, in, out\]/);
    expect(() => conv2dWeightFromTorch(w)).toThrow(/rank-4/);
    expect(() => conv2dWeightToTorch(w)).toThrow(/rank-4/);
    expect(() => linearWeightToTorch(w)).toThrow(/rank-2/);
    expect(() => conv1dWeightToTorch(tf.zeros([2, 2]))).toThrow(/rank-3 weight \[k, in, out\], got rank 2/);
    expect(() => conv1dWeightFromTorch({ shape: [1] } as never)).toThrow(/expected a tf.Tensor/);
    w.dispose();
  });
});
