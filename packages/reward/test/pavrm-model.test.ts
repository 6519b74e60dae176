/** PAVRM's shapes, variables and configuration; head gradients against finite differences. */
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  InvalidArgumentError,
  shutdownBackend,
  timestep,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Aggregation, Pavrm } from '../src/index.js';
import { TinyVideoBackbone } from '../src/toy/index.js';
import { stubBackbone, tinyBatch, tinyReward } from './helpers.js';

describe.each(backendsUnderTest())('Pavrm on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it.each(['query-attention', 'attention', 'mean', 'max'] as Aggregation[])(
    '%s: logits [B], probabilities in (0, 1), features [B, N, D]',
    async (aggregation) => {
      const { backbone, reward } = tinyReward(1, { aggregation });
      const batch = tinyBatch(3);
      const ts = [timestep(0), timestep(500), timestep(999)];
      const tokens = reward.features(batch.latents, ts, batch.conditioning);
      expect(tokens.shape).toEqual([3, 8, 32]);
      const logits = reward.score(batch.latents, ts, batch.conditioning);
      expect(logits.shape).toEqual([3]);
      const p = await reward.probability(batch.latents, ts, batch.conditioning).data();
      expect(Array.from(p).every((v) => v > 0 && v < 1)).toBe(true);
      const hasQuery = aggregation === 'query-attention' || aggregation === 'attention';
      expect(reward.headVariables().has('query_attention.queries')).toBe(hasQuery);
      tf.dispose([tokens, logits]);
      reward.dispose();
      backbone.dispose();
    },
  );

  it("has the paper's head by default and every variable under a stable name", () => {
    const backbone = new TinyVideoBackbone('tiny', { seed: 3 });
    const reward = new Pavrm(backbone);
    expect(reward.config).toEqual({
      featureDim: 32,
      aggregation: 'query-attention',
      numHeads: 8,
      hidden: [1024, 512],
      blocks: 2,
    });
    const shapes = Object.fromEntries([...reward.headVariables()].map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      'query_attention.queries': [1, 32],
      'query_attention.multihead_attn.in_proj_weight': [32, 96],
      'query_attention.multihead_attn.in_proj_bias': [96],
      'query_attention.multihead_attn.out_proj.weight': [32, 32],
      'query_attention.multihead_attn.out_proj.bias': [32],
      'mlp.fc1.weight': [32, 1024],
      'mlp.fc1.bias': [1024],
      'mlp.fc2.weight': [1024, 512],
      'mlp.fc2.bias': [512],
      'mlp.fc3.weight': [512, 1],
      'mlp.fc3.bias': [1],
    });
    const names = [...reward.namedVariables().keys()];
    expect(names).toContain('blocks.1.ffn.2.weight');
    expect(names).toContain('mlp.fc3.bias');
    const { backbone: trainable, head } = reward.trainableVariables();
    expect(head).toHaveLength(11);
    expect(trainable.every((v) => !v.name.includes('embedding'))).toBe(true);
    expect(trainable.length).toBeGreaterThan(0);
    reward.dispose();
    backbone.dispose();
  });

  it('runs the first K blocks of a deeper backbone', async () => {
    const backbone = new TinyVideoBackbone(
      {
        ...{
          latentChannels: 4,
          patchSize: [2, 4, 4],
          dim: 16,
          numBlocks: 3,
          numHeads: 2,
          ffnDim: 16,
          textDim: 8,
          freqDim: 8,
        },
      },
      { seed: 1 },
    );
    const reward = new Pavrm(backbone, { blocks: 1, hidden: [8] });
    const batch = tinyBatch(2);
    const ts = [timestep(10), timestep(20)];
    const a = await reward.features(batch.latents, ts, batch.conditioning).data();
    const b = await backbone.features(batch.latents, ts, batch.conditioning, 1).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(() => new Pavrm(backbone, { blocks: 4 })).toThrow(/blocks must be an integer in \[0, 3\]/);
    reward.dispose();
    backbone.dispose();
  });

  it('rejects bad configurations and inputs, naming them', () => {
    expect(() => new Pavrm(stubBackbone(30), { numHeads: 8 })).toThrow(
      /numHeads: expected a positive divisor of featureDim 30, got 8/,
    );
    expect(() => new Pavrm(stubBackbone(32), { aggregation: 'sum' as Aggregation })).toThrow(
      /aggregation: expected one of/,
    );
    expect(() => new Pavrm(stubBackbone(32), { hidden: [0] })).toThrow(/hidden/);
    expect(() => new Pavrm({} as never)).toThrow(InvalidArgumentError);
    const { backbone, reward } = tinyReward(2);
    const batch = tinyBatch(2);
    expect(() => reward.score(tf.zeros([2, 4, 8, 8]) as never, [0, 0] as never, batch.conditioning)).toThrow(
      /^x: expected a latent video \[B, F, H, W, C\] \(rank 5, channels last\), got rank 4 \[2, 4, 8, 8\]/,
    );
    expect(() => reward.aggregate(tf.zeros([2, 5, 16]))).toThrow(
      /tokens must be \[B, N, 32\], got \[2, 5, 16\]/,
    );
    reward.dispose();
    backbone.dispose();
  });
});

describe('Pavrm head gradients vs finite differences (cpu, float32)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  afterAll(() => shutdownBackend());

  it.each(['query-attention', 'attention', 'mean', 'max'] as Aggregation[])('%s', async (aggregation) => {
    const d = 8;
    const model = new Pavrm(stubBackbone(d), { aggregation, numHeads: 2, hidden: [6, 5], seed: 4 });
    const g = new Generator(9);
    const tokens = g.normal<tf.Rank.R3>([2, 5, d]);
    const coef = g.normal<tf.Rank.R1>([2]);
    const f = () => tf.sum(tf.mul(model.scoreFeatures(tokens), coef)) as tf.Scalar;
    const { grads } = tf.variableGrads(f, [...model.headVariables().values()]);
    // Central differences on a few coordinates of each parameter. A step that crosses a ReLU kink gives a
    // one-sided slope; such coordinates show as disagreement between two step sizes and are skipped.
    let checked = 0;
    let total = 0;
    for (const [name, v] of model.headVariables()) {
      const analytic = grads[v.name]!.dataSync();
      const base = v.dataSync().slice();
      for (const i of [0, Math.floor(base.length / 2), base.length - 1]) {
        const at = (delta: number) => {
          const p = base.slice();
          p[i] = base[i]! + delta;
          v.assign(tf.tensor(p, v.shape));
          return tf.tidy(() => f().dataSync()[0]!);
        };
        const fd = (h: number) => (at(h) - at(-h)) / (2 * h);
        const [coarse, fine] = [fd(4e-3), fd(2e-3)];
        v.assign(tf.tensor(base, v.shape));
        total++;
        if (Math.abs(coarse - fine) > 1e-3 + 1e-2 * Math.abs(fine)) continue;
        checked++;
        expect(Math.abs(fine - analytic[i]!), `${name}[${i}]: fd ${fine} vs ${analytic[i]}`).toBeLessThan(
          2e-3 + 1e-2 * Math.abs(analytic[i]!),
        );
      }
    }
    expect(checked / total).toBeGreaterThan(0.8);
    tf.dispose([tokens, coef, ...Object.values(grads)]);
    model.dispose();
  });
});
