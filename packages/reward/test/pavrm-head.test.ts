/**
 * PAVRM's aggregation and head against an independent PyTorch transcription of the reference's modules
 * (fixtures/head, made by scripts/make-fixtures.py): values and gradients of all four aggregations, the
 * reference's own forward at batch 1, and the reference-layout safetensors files.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, initBackend, loadSafetensors, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Aggregation, headFromStateDicts, headParamSpecs, Pavrm } from '../src/index.js';
import { fixturePath, loadHeadFixture, maxRelDiff, stubBackbone, values } from './helpers.js';

const fx = loadHeadFixture();
const { featureDim, numHeads, hidden, batch, tokens: numTokens } = fx.config;
const AGGS: Aggregation[] = ['query-attention', 'attention', 'mean', 'max'];
const TOL = 1e-5;

function torchState(module: 'query_attention' | 'mlp'): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(fx[module]).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
}

function fixtureModel(aggregation: Aggregation): Pavrm {
  const specs = headParamSpecs({ featureDim, aggregation, numHeads, hidden });
  const attention = aggregation === 'query-attention' || aggregation === 'attention';
  const weights = headFromStateDicts(specs, {
    ...(attention ? { queryAttention: torchState('query_attention') } : {}),
    mlp: torchState('mlp'),
  });
  const model = new Pavrm(stubBackbone(featureDim), { aggregation, numHeads, hidden, headWeights: weights });
  tf.dispose([...weights.values()]);
  return model;
}

describe.each(backendsUnderTest())('PAVRM head vs PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => shutdownBackend());

  it.each(AGGS)('%s: pooled z and logits agree to 1e-5', async (aggregation) => {
    const model = fixtureModel(aggregation);
    const tokens = tf.tensor3d(fx.tokens, [batch, numTokens, featureDim]);
    const z = model.aggregate(tokens);
    const logits = model.scoreFeatures(tokens);
    expect(z.shape).toEqual([batch, featureDim]);
    expect(logits.shape).toEqual([batch]);
    const want = fx.outputs[aggregation]!;
    expect(maxRelDiff(await values(z), want.z)).toBeLessThan(TOL);
    expect(maxRelDiff(await values(logits), want.logits)).toBeLessThan(TOL);
    tf.dispose([tokens, z, logits]);
    model.dispose();
  });

  it.each(AGGS)('%s: gradients of the head and of the tokens agree with autograd', async (aggregation) => {
    const model = fixtureModel(aggregation);
    const tokens = tf.tensor3d(fx.tokens, [batch, numTokens, featureDim]);
    const coef = tf.tensor1d(fx.coef);
    const specs = model.headParamSpecs();
    const head = model.headVariables();
    const names = [...head.keys()];
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(model.scoreFeatures(tokens), coef)) as tf.Scalar,
      [...head.values()],
    );
    const want = fx.grads[aggregation]!;
    for (const name of names) {
      const spec = specs.find((s) => s.name === name)!;
      const g = grads[head.get(name)!.name]!;
      const torchLayout = spec.layout === 'linear' ? tf.transpose(g) : g;
      expect(maxRelDiff(await values(torchLayout), want[name]!), name).toBeLessThan(TOL);
    }
    const dTokens = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(model.scoreFeatures(t), coef)))(tokens);
    expect(maxRelDiff(await values(dTokens), want.tokens!)).toBeLessThan(TOL);
    tf.dispose([tokens, coef, dTokens, ...Object.values(grads)]);
    model.dispose();
  });

  it("equals the reference module's own forward at batch 1", async () => {
    const model = fixtureModel('query-attention');
    const one = tf.tensor3d(fx.tokens.slice(0, numTokens * featureDim), [1, numTokens, featureDim]);
    const z = model.aggregate(one);
    expect(maxRelDiff(await values(z), fx.reference_batch1.z)).toBeLessThan(TOL);
    tf.dispose([one, z]);
    model.dispose();
  });

  it('loads the state dicts PyTorch wrote (reference names, [out, in] layouts)', async () => {
    const qa = await loadSafetensors(fixturePath('head/query_attention.safetensors'));
    const mlp = await loadSafetensors(fixturePath('head/mlp.safetensors'));
    expect(Object.keys(qa).sort()).toEqual([
      'multihead_attn.in_proj_bias',
      'multihead_attn.in_proj_weight',
      'multihead_attn.out_proj.bias',
      'multihead_attn.out_proj.weight',
      'queries',
    ]);
    expect(qa['multihead_attn.in_proj_weight']!.shape).toEqual([3 * featureDim, featureDim]);
    expect(Object.keys(mlp).sort()).toEqual([
      'fc1.bias',
      'fc1.weight',
      'fc2.bias',
      'fc2.weight',
      'fc3.bias',
      'fc3.weight',
    ]);
    const specs = headParamSpecs({ featureDim, aggregation: 'query-attention', numHeads, hidden });
    const weights = headFromStateDicts(specs, { queryAttention: qa, mlp });
    const model = new Pavrm(stubBackbone(featureDim), { numHeads, hidden, headWeights: weights });
    const tokens = tf.tensor3d(fx.tokens, [batch, numTokens, featureDim]);
    const logits = model.scoreFeatures(tokens);
    expect(maxRelDiff(await values(logits), fx.outputs['query-attention']!.logits)).toBeLessThan(TOL);
    tf.dispose([tokens, logits, ...Object.values(qa), ...Object.values(mlp), ...weights.values()]);
    model.dispose();
  });
});
