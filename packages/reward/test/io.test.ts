/** Saving and loading a PAVRM: the reference's names and PyTorch layouts in the files, round trips. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendsUnderTest, initBackend, loadSafetensors, shutdownBackend, timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadReward,
  loadRewardFrom,
  loadRewardHead,
  Pavrm,
  saveReward,
  serializeReward,
} from '../src/index.js';
import { TinyVideoBackbone } from '../src/toy/index.js';
import {
  fixturePath,
  loadHeadFixture,
  maxRelDiff,
  stubBackbone,
  tinyBatch,
  tinyReward,
  values,
} from './helpers.js';

describe.each(backendsUnderTest())('PAVRM files on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });

  it("saves the head under the reference's names in PyTorch layouts and the backbone in Wan layout", async () => {
    const { backbone, reward } = tinyReward(1);
    const dir = mkdtempSync(path.join(tmpdir(), 'prfl-reward-io-'));
    dirs.push(dir);
    const manifest = await saveReward(reward, dir);
    expect(readdirSync(dir).sort()).toEqual([
      'mlp.safetensors',
      'pavrm.json',
      'query_attention.safetensors',
      'transformer.safetensors',
    ]);
    expect(JSON.parse(readFileSync(path.join(dir, 'pavrm.json'), 'utf8'))).toEqual(manifest);
    expect(manifest.config).toEqual({
      featureDim: 32,
      aggregation: 'query-attention',
      numHeads: 8,
      hidden: [16, 8],
      blocks: 2,
    });
    const qa = await loadSafetensors(path.join(dir, 'query_attention.safetensors'));
    const shapes = (r: Record<string, tf.Tensor>) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.shape]));
    expect(shapes(qa)).toEqual({
      queries: [1, 32],
      'multihead_attn.in_proj_weight': [96, 32],
      'multihead_attn.in_proj_bias': [96],
      'multihead_attn.out_proj.weight': [32, 32],
      'multihead_attn.out_proj.bias': [32],
    });
    const mlp = await loadSafetensors(path.join(dir, 'mlp.safetensors'));
    expect(shapes(mlp)).toEqual({
      'fc1.weight': [16, 32],
      'fc1.bias': [16],
      'fc2.weight': [8, 16],
      'fc2.bias': [8],
      'fc3.weight': [1, 8],
      'fc3.bias': [1],
    });
    // [out, in] in the file is the transpose of our [in, out] variable.
    const fc1 = reward.headVariables().get('mlp.fc1.weight')!;
    expect(await values(mlp['fc1.weight']!)).toEqual(await values(tf.transpose(fc1)));
    const blocks = await loadSafetensors(path.join(dir, 'transformer.safetensors'));
    expect(Object.keys(blocks).sort()).toEqual([...backbone.namedVariables().keys()].sort());
    expect(blocks['blocks.0.self_attn.q.weight']!.shape).toEqual([32, 32]);
    expect(blocks['blocks.0.ffn.0.weight']!.shape).toEqual([64, 32]);
    expect(blocks['patch_embedding.weight']!.shape).toEqual([32, 4, 2, 4, 4]);
    tf.dispose([...Object.values(qa), ...Object.values(mlp), ...Object.values(blocks)]);
    reward.dispose();
    backbone.dispose();
  });

  it('round-trips: a loaded model on a fresh backbone scores exactly like the saved one (folder and bytes)', async () => {
    const { backbone, reward } = tinyReward(2, { aggregation: 'query-attention' });
    const batch = tinyBatch(3);
    const ts = [timestep(100), timestep(500), timestep(900)];
    const want = await values(reward.score(batch.latents, ts, batch.conditioning));
    const dir = mkdtempSync(path.join(tmpdir(), 'prfl-reward-io-'));
    dirs.push(dir);
    await saveReward(reward, dir);
    const fresh = new TinyVideoBackbone('tiny', { seed: 77 });
    const loaded = await loadReward(dir, fresh);
    expect(loaded.config).toEqual(reward.config);
    expect(await values(loaded.score(batch.latents, ts, batch.conditioning))).toEqual(want);

    const files = await serializeReward(reward, { backbone: 'trainable', backboneLayout: 'tfjs' });
    const fresh2 = new TinyVideoBackbone('tiny', { seed: 2 });
    const fromBytes = await loadRewardFrom(files.get('pavrm.json')!, (f) => files.get(f)!, fresh2);
    expect(await values(fromBytes.score(batch.latents, ts, batch.conditioning))).toEqual(want);
    for (const m of [reward, loaded, fromBytes]) m.dispose();
    for (const b of [backbone, fresh, fresh2]) b.dispose();
  });

  it('loads head files written by PyTorch into an existing model, and refuses mismatched ones', async () => {
    const fx = loadHeadFixture();
    const { featureDim, numHeads, hidden } = fx.config;
    const model = new Pavrm(stubBackbone(featureDim), { numHeads, hidden });
    await loadRewardHead(model, {
      queryAttention: fixturePath('head/query_attention.safetensors'),
      mlp: fixturePath('head/mlp.safetensors'),
    });
    const tokens = tf.tensor3d(fx.tokens, [fx.config.batch, fx.config.tokens, featureDim]);
    expect(
      maxRelDiff(await values(model.scoreFeatures(tokens)), fx.outputs['query-attention']!.logits),
    ).toBeLessThan(1e-5);
    const wider = new Pavrm(stubBackbone(featureDim), { numHeads, hidden: [12, 9] });
    await expect(
      loadRewardHead(wider, {
        queryAttention: fixturePath('head/query_attention.safetensors'),
        mlp: fixturePath('head/mlp.safetensors'),
      }),
    ).rejects.toThrow(/mlp state dict: fc2\.weight has shape \[8, 12\], expected \[9, 12\]/);
    const pooled = new Pavrm(stubBackbone(featureDim), { aggregation: 'mean', hidden });
    await expect(
      loadRewardHead(pooled, {
        queryAttention: fixturePath('head/query_attention.safetensors'),
        mlp: fixturePath('head/mlp.safetensors'),
      }),
    ).rejects.toThrow(/query_attention state dict does not match.*unexpected keys.*no query attention/);
    tf.dispose(tokens);
    for (const m of [model, wider, pooled]) m.dispose();
  });

  it("loads the reference's own .ckpt head files (torch.save) as they are, scoring as the same weights in safetensors", async () => {
    const fx = loadHeadFixture();
    const { featureDim, numHeads, hidden } = fx.config;
    const tokens = tf.tensor3d(fx.tokens, [fx.config.batch, fx.config.tokens, featureDim]);
    const fromSafetensors = new Pavrm(stubBackbone(featureDim), { numHeads, hidden });
    await loadRewardHead(fromSafetensors, {
      queryAttention: fixturePath('head/query_attention.safetensors'),
      mlp: fixturePath('head/mlp.safetensors'),
    });
    const want = await values(fromSafetensors.scoreFeatures(tokens));
    // As files on disk, and as bytes (the browser path); the mlp also wrapped as {"state_dict": ..., "step": 100}.
    const sources = [
      {
        queryAttention: fixturePath('head/query_attention_step_100.ckpt'),
        mlp: fixturePath('head/mlp_step_100.ckpt'),
      },
      {
        queryAttention: new Uint8Array(readFileSync(fixturePath('head/query_attention_step_100.ckpt'))),
        mlp: new Uint8Array(readFileSync(fixturePath('head/mlp_wrapped.ckpt'))),
      },
    ];
    for (const source of sources) {
      const fromCkpt = new Pavrm(stubBackbone(featureDim), { numHeads, hidden });
      await loadRewardHead(fromCkpt, source);
      const got = await values(fromCkpt.scoreFeatures(tokens));
      expect(got).toEqual(want);
      expect(maxRelDiff(got, fx.outputs['query-attention']!.logits)).toBeLessThan(1e-5);
      fromCkpt.dispose();
    }
    // A mismatch in a .ckpt is reported like one in a safetensors file.
    const wider = new Pavrm(stubBackbone(featureDim), { numHeads, hidden: [12, 9] });
    await expect(
      loadRewardHead(wider, {
        queryAttention: fixturePath('head/query_attention_step_100.ckpt'),
        mlp: fixturePath('head/mlp_step_100.ckpt'),
      }),
    ).rejects.toThrow(/mlp state dict: fc2\.weight has shape \[8, 12\], expected \[9, 12\]/);
    tf.dispose(tokens);
    fromSafetensors.dispose();
    wider.dispose();
  });
});
