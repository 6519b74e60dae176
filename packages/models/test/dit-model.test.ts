import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  shutdownBackend,
  type Timestep,
  timestep,
} from '@prfl/tensor';
import { WanDiT } from '../src/index.js';
import { maxDiff, randomize } from './fixtures.js';

const T: Timestep[] = [timestep(900), timestep(250.5)];

describe.each(backendsUnderTest())('WanDiT on %s', (backend) => {
  let model: WanDiT;
  let x: tf.Tensor5D;
  let text: tf.Tensor3D;
  beforeAll(async () => {
    await initBackend({ backend });
    model = new WanDiT('tiny', { seed: 3 });
    randomize(model.namedVariables(), 'model');
    const g = new Generator('inputs');
    x = g.normal([2, 3, 4, 6, 16]);
    text = g.normal([2, 9, 32]);
  });
  afterAll(() => {
    model.dispose();
    shutdownBackend();
  });

  it('predicts a velocity shaped like the latent and features [B, N, D]', () => {
    expect(model.latentChannels).toBe(16);
    expect(model.featureDim).toBe(64);
    expect(model.numBlocks).toBe(4);
    const v = model.predictVelocity(x, T, { text });
    expect(v.shape).toEqual([2, 3, 4, 6, 16]);
    const f = model.features(x, T, { text }, 2);
    expect(f.shape).toEqual([2, 3 * 2 * 3, 64]);
    tf.dispose([v, f]);
  });

  it('a fresh model (Wan init: zero head) predicts zero velocity; the head alone decides', async () => {
    const fresh = new WanDiT('tiny', { seed: 1 });
    const v = fresh.predictVelocity(x, T, { text });
    expect(Math.max(...(await tf.abs(v).data()))).toBe(0);
    tf.dispose(v);
    fresh.dispose();
  });

  it('features(k) is the residual stream after k blocks; features(0) is the patch embedding', async () => {
    const { tokens, context } = model.embed(x, T, { text });
    let h = tokens;
    const byBlock: tf.Tensor[] = [];
    for (let i = 0; i < model.numBlocks; i++) {
      h = model.runBlock(i, h, context);
      byBlock.push(h);
    }
    expect(await maxDiff(model.features(x, T, { text }, 0), tokens)).toBe(0);
    for (const k of [1, 3, 4]) {
      expect(await maxDiff(model.features(x, T, { text }, k), byBlock[k - 1]!)).toBeLessThan(1e-6);
    }
    tf.dispose([tokens, ...byBlock]);
    context.dispose();
  });

  it('truncate(k) copies the embeddings and first k blocks: embeddings frozen, blocks trainable, no head', async () => {
    const backbone = model.truncate(2);
    expect(backbone.numBlocks).toBe(2);
    expect(backbone.featureDim).toBe(64);
    const names = [...backbone.namedVariables().keys()];
    expect(names.some((n) => n.startsWith('head.'))).toBe(false);
    expect(names.some((n) => n.startsWith('blocks.2.'))).toBe(false);
    expect(names).toContain('blocks.1.ffn.2.bias');
    for (const [name, v] of backbone.namedVariables()) {
      expect(v.trainable, name).toBe(name.startsWith('blocks.'));
      expect(v.name).not.toBe(model.namedVariables().get(name)!.name);
    }
    for (const [name, v] of model.namedVariables()) expect(v.trainable, name).toBe(true);
    expect(await maxDiff(backbone.features(x, T, { text }), model.features(x, T, { text }, 2))).toBe(0);
    // A copy: training the backbone leaves the generator as it was.
    const before = model.features(x, T, { text }, 2);
    const w = backbone.namedVariables().get('blocks.0.self_attn.q.weight')!;
    w.assign(tf.mul(w, 2));
    expect(await maxDiff(model.features(x, T, { text }, 2), before)).toBe(0);
    expect(await maxDiff(backbone.features(x, T, { text }), before)).toBeGreaterThan(1e-3);
    // Only block variables get gradients from tf.variableGrads (the embeddings are frozen).
    const { value, grads } = tf.variableGrads(() => tf.sum(backbone.features(x, T, { text })));
    expect(Object.keys(grads).length).toBe(backbone.trainableVariables().length);
    for (const name of Object.keys(grads)) expect(name).toMatch(/\/blocks\.[01]\./);
    tf.dispose([value, before, ...Object.values(grads)]);
    expect(() => model.truncate(5)).toThrow(/k must be an integer in \[1, 4\], got 5/);
    expect(() => backbone.features(x, T, { text }, 3)).toThrow(/blocks must be an integer in \[0, 2\]/);
    backbone.dispose();
  });

  it('explains bad inputs: shapes, channels, timesteps, text, image conditions', () => {
    const c = { text };
    expect(() => model.predictVelocity(tf.zeros([2, 3, 4, 6]) as unknown as tf.Tensor5D, T, c)).toThrow(
      /x: expected a latent video \[B, F, H, W, C\] \(rank 5\), got \[2, 3, 4, 6\]/,
    );
    expect(() => model.predictVelocity(tf.zeros([2, 3, 4, 6, 8]), T, c)).toThrow(
      /x: expected 16 channels \(inDim\), got \[2, 3, 4, 6, 8\]/,
    );
    expect(() => model.predictVelocity(tf.zeros([2, 3, 5, 6, 16]), T, c)).toThrow(
      /multiples of the patch size \[1, 2, 2\], got \[2, 3, 5, 6, 16\]/,
    );
    expect(() => model.predictVelocity(x, [T[0]!], c)).toThrow(
      /timesteps: expected 2 timesteps \(one per batch element\), got 1 \(an array of length 1\)/,
    );
    expect(() => model.predictVelocity(x, [T[0]!, Number.NaN as Timestep], c)).toThrow(/timesteps\[1\]/);
    expect(() => model.predictVelocity(x, T, { text: tf.zeros([2, 9, 31]) as tf.Tensor3D })).toThrow(
      /conditioning.text: expected shape \[B, L, 32\], got \[2, 9, 31\]/,
    );
    expect(() => model.predictVelocity(x, T, { text: tf.zeros([1, 9, 32]) as tf.Tensor3D })).toThrow(
      /conditioning.text: dimension 0 \(B\) is 1 but B = 2/,
    );
    expect(() => model.predictVelocity(x, T, { text: tf.zeros([2, 17, 32]) as tf.Tensor3D })).toThrow(
      /17 tokens exceed textLen 16/,
    );
    expect(() =>
      model.predictVelocity(x, T, { text, image: { latent: tf.zeros([2, 3, 4, 6, 4]) as tf.Tensor5D } }),
    ).toThrow(/channels 16 \+ 4 must equal inDim 16/);
    expect(() =>
      model.predictVelocity(x, T, {
        text,
        image: { latent: x, tokens: tf.zeros([2, 5, 32]) as tf.Tensor3D },
      }),
    ).toThrow();
    const i2v = new WanDiT({
      ...model.config,
      modelType: 'i2v',
      inDim: 36,
      imageDim: 8,
      numLayers: 1,
      textLen: 512,
    });
    expect(() => i2v.predictVelocity(x, T, c)).toThrow(
      /expected 36 channels.*an i2v model also needs conditioning.image.latent/,
    );
    const latent = tf.zeros([2, 3, 4, 6, 20]) as tf.Tensor5D;
    expect(() => i2v.predictVelocity(x, T, { text, image: { latent } })).toThrow(
      /an i2v model needs CLIP image tokens \[B, L, 8\]/,
    );
    const v = i2v.predictVelocity(x, T, {
      text,
      image: { latent, tokens: tf.zeros([2, 3, 8]) as tf.Tensor3D },
    });
    expect(v.shape).toEqual([2, 3, 4, 6, 16]);
    tf.dispose([v, latent]);
    i2v.dispose();
  });

  it('leaks no tensors over repeated forward and backward passes', () => {
    const run = () => {
      tf.dispose(model.predictVelocity(x, T, { text }));
      const { value, grads } = tf.variableGrads(() =>
        tf.mean(tf.square(model.predictVelocity(x, T, { text }))),
      );
      tf.dispose([value, ...Object.values(grads)]);
      const { tokens, context } = model.embed(x, T, { text });
      tf.dispose([tokens, model.features(x, T, { text }, 1)]);
      context.dispose();
    };
    run(); // caches the RoPE tables of this grid
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    const n = tf.memory().numTensors;
    const other = new WanDiT('tiny');
    tf.dispose(other.predictVelocity(x, T, { text }));
    other.dispose();
    expect(tf.memory().numTensors).toBe(n);
  });
});
