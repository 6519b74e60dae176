/**
 * PAVRM on precomputed token features: `Pavrm.forFeatures(D)` (a head on `PrecomputedFeatures`, no
 * hand-made backbone) scores tokens [B, N, D] exactly as a PAVRM with the same head scores the features
 * its own backbone computes; it checks what it is given, trains on the head's variables, and saves and
 * loads like any PAVRM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, Generator, initBackend, shutdownBackend, timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  disposeBatch,
  loadReward,
  loadRewardHead,
  MLP_FILE,
  Pavrm,
  PrecomputedFeatures,
  QUERY_ATTENTION_FILE,
  saveReward,
} from '../src/index.js';
import { tinyBatch, tinyReward, values } from './helpers.js';

describe.each(backendsUnderTest())('PAVRM on precomputed features on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });

  it('scores cached features [B, N, D] as the full model scores its own', async () => {
    const { backbone, reward } = tinyReward(4);
    const batch = tinyBatch(3);
    const ts = [timestep(0), timestep(500), timestep(900)];
    // Features computed once (e.g. by the generator, then cached), the head run elsewhere.
    const tokens = reward.features(batch.latents, ts, batch.conditioning);
    const head = Pavrm.forFeatures(backbone.featureDim, {
      hidden: [16, 8],
      headWeights: reward.headVariables(),
    });
    expect(head.backbone).toBeInstanceOf(PrecomputedFeatures);
    expect(head.config).toEqual({ ...reward.config, blocks: 0 });
    expect([...head.namedVariables().keys()]).toEqual([...reward.headVariables().keys()]);
    const want = await values(reward.score(batch.latents, ts, batch.conditioning));
    expect(await values(head.scoreFeatures(tokens))).toEqual(want);
    const p = await values(head.probabilityFromFeatures(tokens));
    for (const [i, v] of p.entries()) expect(v).toBeCloseTo(1 / (1 + Math.exp(-want[i]!)), 6);
    tokens.dispose();
    disposeBatch(batch);
    for (const m of [head, reward, backbone]) m.dispose();
  });

  it('trains on its head variables; refuses latents, wrong shapes and NaN with errors that say so', async () => {
    const head = Pavrm.forFeatures(16, { hidden: [8], numHeads: 4, seed: 1 });
    const g = new Generator('tokens');
    const tokens = g.normal<tf.Rank.R3>([2, 5, 16]);
    const labels = tf.tensor1d([1, 0]);
    const vars = [...head.headVariables().values()];
    const { value, grads } = tf.variableGrads(
      () => tf.losses.sigmoidCrossEntropy(labels, head.scoreFeatures(tokens)) as tf.Scalar,
      vars,
    );
    expect(Object.keys(grads).length).toBe(vars.length);
    expect(Number.isFinite((await value.data())[0]!)).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);

    const latents = g.normal<tf.Rank.R5>([2, 1, 2, 2, 4]);
    expect(() => head.score(latents, [timestep(10), timestep(10)], { text: tf.zeros([2, 1, 4]) })).toThrow(
      /PrecomputedFeatures: .*cannot compute features from latents; score the tokens \[B, N, D\] with scoreFeatures\(tokens\)/,
    );
    const wrongWidth = tf.zeros([2, 5, 8]);
    expect(() => head.scoreFeatures(wrongWidth)).toThrow(
      /tokens: expected token features \[B, N, 16\] \(featureDim 16, B and N >= 1\), got \[2, 5, 8\]/,
    );
    const flat = tf.zeros([2, 16]);
    expect(() => head.scoreFeatures(flat)).toThrow(/got \[2, 16\]/);
    const nan = tf.fill([1, 3, 16], Number.NaN);
    expect(() => head.scoreFeatures(nan)).toThrow(/^tokens: expected finite values, got 48 NaN/);
    expect(() => Pavrm.forFeatures(0)).toThrow(/featureDim .* must be a positive integer, got 0/);
    tf.dispose([tokens, labels, latents, wrongWidth, flat, nan]);
    head.dispose();
  });

  it('saves and loads like any PAVRM (an empty backbone part); its head files fit a real backbone', async () => {
    const { backbone, reward } = tinyReward(5);
    const d = backbone.featureDim;
    const head = Pavrm.forFeatures(d, { hidden: [16, 8], seed: 2 });
    const dir = mkdtempSync(path.join(tmpdir(), 'prfl-features-'));
    dirs.push(dir);
    await saveReward(head, dir);
    const loaded = await loadReward(dir, new PrecomputedFeatures(d));
    const tokens = new Generator('t').normal<tf.Rank.R3>([3, 4, d]);
    const want = await values(head.scoreFeatures(tokens));
    expect(await values(loaded.scoreFeatures(tokens))).toEqual(want);
    // The head trained on cached features goes onto the backbone that made them.
    await loadRewardHead(reward, {
      queryAttention: path.join(dir, QUERY_ATTENTION_FILE),
      mlp: path.join(dir, MLP_FILE),
    });
    expect(await values(reward.scoreFeatures(tokens))).toEqual(want);
    tokens.dispose();
    for (const m of [loaded, head, reward, backbone]) m.dispose();
  });
});
