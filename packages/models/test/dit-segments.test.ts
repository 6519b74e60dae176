import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  measureMemory,
  segmentedGradients,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { WanDiT } from '../src/index.js';
import { maxDiff, randomize } from './fixtures.js';

describe.each(backendsUnderTest())('Wan DiT per-block segmented backprop on %s', (backend) => {
  let model: WanDiT;
  let x: tf.Tensor5D;
  let text: tf.Tensor3D;
  let mask: tf.Tensor2D;
  let w: tf.Tensor;
  const ts = [timestep(640), timestep(75)];
  beforeAll(async () => {
    await initBackend({ backend });
    model = new WanDiT('tiny');
    randomize(model.namedVariables(), 'segments');
    const g = new Generator('segment-inputs');
    x = g.normal([2, 2, 8, 8, 16]);
    text = g.normal([2, 12, 32]);
    mask = tf.tensor2d([Array.from({ length: 12 }, (_, i) => (i < 9 ? 1 : 0)), Array(12).fill(1)]);
    w = g.normal([2, 2, 8, 8, 16]);
  });
  afterAll(() => {
    model.dispose();
    shutdownBackend();
  });

  it('gives the plain tape’s gradients (every variable and the latent) with a lower peak', async () => {
    const cond = { text, textMask: mask };
    const loss = (v: tf.Tensor) => tf.sum(tf.mul(v, w)) as tf.Scalar;
    const vars = [...model.namedVariables().values()];
    const xv = tf.variable(x, true, 'segments-test-x');
    const plain = measureMemory(() =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => loss(model.predictVelocity(xv as tf.Tensor5D, ts, cond)),
          [...vars, xv],
        );
        return { value, grads, gx: grads[xv.name]! };
      }),
    );
    xv.dispose();
    const chain = model.segments(x, ts, cond);
    expect(chain.segments.length).toBe(1 + 4 + 1);
    const seg = measureMemory(() =>
      segmentedGradients({
        segments: chain.segments,
        input: chain.input,
        loss: (a) => loss(chain.output(a)),
        variables: vars,
        inputGradient: true,
      }),
    );
    chain.dispose();
    const ours = seg.result;
    expect(Math.abs(ours.value.dataSync()[0]! - plain.result.value.dataSync()[0]!)).toBeLessThan(1e-4);
    let worst = 0;
    for (const v of vars)
      worst = Math.max(worst, await maxDiff(ours.grads[v.name]!, plain.result.grads[v.name]!));
    expect(Object.keys(ours.grads).length).toBe(vars.length);
    expect(worst).toBeLessThan(1e-5);
    expect(await maxDiff(ours.inputGrad![0]!, plain.result.gx)).toBeLessThan(1e-5);
    console.log(
      `[${backend}] tiny, 128 tokens, peak bytes: plain tape ${plain.peakBytes}, per-block segments ${seg.peakBytes}`,
    );
    expect(seg.peakBytes).toBeLessThan(plain.peakBytes);
    tf.dispose([ours.value, ...Object.values(ours.grads), ...ours.inputGrad!]);
    tf.dispose([plain.result.value, ...Object.values(plain.result.grads)]);
  });

  it('chains a truncated backbone to its features (no head), several blocks per segment', async () => {
    const backbone = model.truncate(3);
    const chain = backbone.segments(x, ts, { text }, { blocksPerSegment: 2 });
    expect(chain.segments.length).toBe(1 + 2);
    const loss = (f: tf.Tensor) => tf.mean(tf.square(f)) as tf.Scalar;
    const result = segmentedGradients({
      segments: chain.segments,
      input: chain.input,
      loss: (a) => loss(chain.output(a)),
    });
    const plain = tf.variableGrads(() => loss(backbone.features(x, ts, { text })));
    expect(Object.keys(result.grads).sort()).toEqual(Object.keys(plain.grads).sort());
    for (const [k, g] of Object.entries(plain.grads))
      expect(await maxDiff(result.grads[k]!, g), k).toBeLessThan(1e-5);
    tf.dispose([result.value, plain.value, ...Object.values(result.grads), ...Object.values(plain.grads)]);
    chain.dispose();
    expect(() => backbone.segments(x, ts, { text }, { head: true })).toThrow(/no head/);
    backbone.dispose();
  });
});
