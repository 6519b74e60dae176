import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, Generator, initBackend, shutdownBackend, timestep } from '@prfl/tensor';
import { WanDiT } from '../src/index.js';
import { randomize } from './fixtures.js';

// A DiT small enough for finite differences: D 12, 2 heads of 6 (RoPE 2/2/2), FFN 16, 2 blocks, 8 tokens.
const SMALL = {
  dim: 12,
  numHeads: 2,
  numLayers: 2,
  ffnDim: 16,
  inDim: 4,
  outDim: 4,
  textDim: 8,
  textLen: 4,
  freqDim: 8,
} as const;

// Central differences in float32: the step balances truncation (~EPS^2) against rounding noise of the
// loss (~1e-4 on wasm for a loss of ~70, i.e. ~2e-3 in a difference quotient at EPS 3e-2). Errors are
// relative to max(|autodiff|, |differences|, FLOOR): below FLOOR the rounding noise dominates.
const EPS = 3e-2;
const REL_TOL = 2e-2;
const FLOOR = 0.1;

describe.each(backendsUnderTest())('Wan DiT gradients vs central differences on %s', (backend) => {
  let model: WanDiT;
  let x: tf.Tensor5D;
  let text: tf.Tensor3D;
  let weights: tf.Tensor;
  const ts = [timestep(700), timestep(120)];
  beforeAll(async () => {
    await initBackend({ backend });
    model = new WanDiT(SMALL);
    randomize(model.namedVariables(), 'grad-model', 0.5);
    const g = new Generator('grad-inputs');
    x = g.normal([2, 2, 4, 4, 4]);
    text = g.normal([2, 3, 8]);
    weights = g.normal([2, 2, 4, 4, 4]);
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([x, text, weights]);
    shutdownBackend();
  });

  /** A scalar that reads every output element: sum(v * w). */
  const loss = (input: tf.Tensor5D) =>
    tf.tidy(
      () => tf.sum(tf.mul(model.predictVelocity(input, ts, { text }), weights)).dataSync()[0] as number,
    );

  function check(label: string, analytic: number, numeric: number): void {
    const scale = Math.max(Math.abs(analytic), Math.abs(numeric), FLOOR);
    expect(
      Math.abs(analytic - numeric) / scale,
      `${label}: autodiff ${analytic} vs differences ${numeric}`,
    ).toBeLessThan(REL_TOL);
  }

  it('with respect to parameters of every kind', () => {
    const probes = [
      'patch_embedding.weight',
      'patch_embedding.bias',
      'text_embedding.0.weight',
      'time_embedding.0.weight',
      'time_projection.1.weight',
      'blocks.0.self_attn.q.weight',
      'blocks.0.self_attn.k.bias',
      'blocks.0.self_attn.norm_k.weight',
      'blocks.0.norm3.weight',
      'blocks.0.cross_attn.v.weight',
      'blocks.0.cross_attn.norm_q.weight',
      'blocks.1.ffn.0.weight',
      'blocks.1.modulation',
      'head.head.weight',
      'head.modulation',
    ];
    const vars = model.namedVariables();
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(model.predictVelocity(x, ts, { text }), weights)) as tf.Scalar,
      probes.map((n) => vars.get(n)!),
    );
    value.dispose();
    const g = new Generator('probe-elements');
    for (const name of probes) {
      const v = vars.get(name)!;
      const grad = grads[v.name]!.dataSync();
      for (let r = 0; r < 2; r++) {
        const i = g.nextInt(v.size);
        const original = v.dataSync().slice();
        const perturbed = (delta: number) => {
          const values = original.slice();
          values[i] = (values[i] as number) + delta;
          v.assign(tf.tensor(values, v.shape));
          return loss(x);
        };
        const numeric = (perturbed(EPS) - perturbed(-EPS)) / (2 * EPS);
        v.assign(tf.tensor(original, v.shape));
        check(`${name}[${i}]`, grad[i] as number, numeric);
      }
    }
    tf.dispose(Object.values(grads));
  });

  it('with respect to the noisy latent', () => {
    const grad = tf.grad((input: tf.Tensor) =>
      tf.sum(tf.mul(model.predictVelocity(input as tf.Tensor5D, ts, { text }), weights)),
    )(x);
    const gx = grad.dataSync();
    const base = x.dataSync();
    const g = new Generator('probe-x');
    for (let r = 0; r < 8; r++) {
      const i = g.nextInt(x.size);
      const at = (delta: number) => {
        const values = base.slice();
        values[i] = (values[i] as number) + delta;
        const xi = tf.tensor(values, x.shape) as tf.Tensor5D;
        const l = loss(xi);
        xi.dispose();
        return l;
      };
      check(`x[${i}]`, gx[i] as number, (at(EPS) - at(-EPS)) / (2 * EPS));
    }
    grad.dispose();
  });
});
