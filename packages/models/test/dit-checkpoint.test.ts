import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backendsUnderTest,
  initBackend,
  loadSafetensors,
  openSafetensors,
  saveSafetensors,
  shutdownBackend,
} from '@prfl/tensor';
import { loadWanDiT, loadWanDiTFromBytes, saveWanDiT, serializeWanDiT, WanDiT } from '../src/index.js';
import { FIXTURES, loadFixture, maxDiff, randomize } from './fixtures.js';

async function sameVariables(a: WanDiT, b: WanDiT): Promise<number> {
  let worst = 0;
  expect([...b.namedVariables().keys()].sort()).toEqual([...a.namedVariables().keys()].sort());
  for (const [k, v] of a.namedVariables())
    worst = Math.max(worst, await maxDiff(v, b.namedVariables().get(k)!));
  return worst;
}

function bf16(values: Float32Array): Float32Array {
  const bits = new Uint32Array(values.buffer.slice(0));
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16; // round to nearest even
  }
  return new Float32Array(bits.buffer);
}

describe.each(backendsUnderTest())('Wan DiT checkpoints on %s', (backend) => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend });
    dir = mkdtempSync(path.join(tmpdir(), 'prfl-dit-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    shutdownBackend();
  });

  it('loads the PyTorch-written fixture folder (config.json + bf16 safetensors) exactly', async () => {
    const folder = path.join(FIXTURES, 'tiny-t2v');
    const model = await loadWanDiT(folder);
    const fixture = await loadFixture('tiny-t2v');
    // bf16 values are exact in float32; layouts converted: Linear transposed, Conv3d to [t, h, w, in, out].
    const q = model.namedVariables().get('blocks.0.self_attn.q.weight')!;
    expect(await maxDiff(q, tf.transpose(fixture.weights['blocks.0.self_attn.q.weight']!))).toBe(0);
    const patch = model.namedVariables().get('patch_embedding.weight')!;
    expect(patch.shape).toEqual([1, 2, 2, 16, 64]);
    expect(
      await maxDiff(patch, tf.transpose(fixture.weights['patch_embedding.weight']!, [2, 3, 4, 1, 0])),
    ).toBe(0);
    model.dispose();
  });

  it('save -> load round-trips every value exactly (float32), in the layout PyTorch reads', async () => {
    const model = new WanDiT('tiny', { seed: 5 });
    randomize(model.namedVariables(), 'ckpt');
    const out = path.join(dir, 'f32');
    const saved = await saveWanDiT(model, out);
    expect(saved.indexFile).toBeUndefined();
    expect(readdirSync(out).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ _class_name: 'WanModel', dim: 64, num_layers: 4, patch_size: [1, 2, 2] });
    // The stored tensors are PyTorch-shaped under Wan's keys.
    const file = await openSafetensors(path.join(out, 'diffusion_pytorch_model.safetensors'));
    expect(file.info('patch_embedding.weight').shape).toEqual([64, 16, 1, 2, 2]);
    expect(file.info('head.head.weight').shape).toEqual([64, 64]);
    expect(file.info('blocks.0.ffn.0.weight').shape).toEqual([128, 64]);
    expect(file.info('blocks.0.modulation').shape).toEqual([1, 6, 64]);
    expect(file.metadata).toEqual({ format: 'pt' });
    await file.close();
    const loaded = await loadWanDiT(out);
    expect(loaded.config).toEqual(model.config);
    expect(await sameVariables(model, loaded)).toBe(0);
    loaded.dispose();
    // Browser-style: bytes in, bytes out.
    const bytes = await serializeWanDiT(model);
    const again = await loadWanDiTFromBytes(bytes.config, bytes.weights);
    expect(await sameVariables(model, again)).toBe(0);
    again.dispose();
    model.dispose();
  });

  it('saves bfloat16 and sharded checkpoints with an index', async () => {
    const model = new WanDiT('tiny', { seed: 6 });
    randomize(model.namedVariables(), 'ckpt-bf16');
    const out = path.join(dir, 'bf16-sharded');
    const saved = await saveWanDiT(model, out, { dtype: 'BF16', maxShardBytes: 200_000 });
    expect(saved.indexFile).toBe('diffusion_pytorch_model.safetensors.index.json');
    expect(saved.files.length).toBeGreaterThan(1);
    expect(saved.files[0]).toMatch(/^diffusion_pytorch_model-00001-of-0000\d\.safetensors$/);
    const loaded = await loadWanDiT(out);
    for (const [k, v] of model.namedVariables()) {
      const want = bf16(v.dataSync() as Float32Array);
      expect(await maxDiff(loaded.namedVariables().get(k)!, tf.tensor(want, v.shape)), k).toBe(0);
    }
    loaded.dispose();
    model.dispose();
  });

  it('refuses checkpoints that do not match the config, listing keys and shapes, before loading anything', async () => {
    const model = new WanDiT('tiny', { seed: 7 });
    const state = model.stateDict();
    const write = async (name: string, tensors: Map<string, tf.Tensor>) => {
      const folder = path.join(dir, name);
      await saveWanDiT(model, folder);
      await saveSafetensors(path.join(folder, 'diffusion_pytorch_model.safetensors'), tensors);
      return folder;
    };
    const missing = new Map(state);
    missing.delete('blocks.2.cross_attn.norm_k.weight');
    missing.delete('head.modulation');
    await expect(loadWanDiT(await write('missing', missing))).rejects.toThrow(
      /missing keys \(2\): blocks\.2\.cross_attn\.norm_k\.weight, head\.modulation/,
    );
    const extra = new Map(state);
    extra.set('blocks.4.ffn.0.weight', tf.zeros([128, 64]));
    extra.set('pos_embed', tf.zeros([3]));
    await expect(loadWanDiT(await write('extra', extra))).rejects.toThrow(
      /unexpected keys \(2\): blocks\.4\.ffn\.0\.weight, pos_embed/,
    );
    const wrong = new Map(state);
    wrong.set('blocks.1.ffn.0.weight', tf.zeros([64, 128]));
    await expect(loadWanDiT(await write('wrong', wrong))).rejects.toThrow(
      /blocks\.1\.ffn\.0\.weight has shape \[64, 128\] in the checkpoint, expected \[128, 64\]/,
    );
    // The same checks on an in-memory state dict.
    expect(() => WanDiT.fromStateDict('tiny', missing)).toThrow(/missing keys \(2\)/);
    // And a config that is not the one the weights were made for.
    const fixture = await loadSafetensors(
      path.join(FIXTURES, 'tiny-t2v', 'diffusion_pytorch_model.safetensors'),
    );
    expect(() => WanDiT.fromStateDict({ ...model.config, numLayers: 3 }, fixture)).toThrow(
      /unexpected keys \(\d+\): blocks\.3\./,
    );
    expect(() => WanDiT.fromStateDict({ ...model.config, ffnDim: 96 }, fixture)).toThrow(
      /blocks\.0\.ffn\.0\.weight has shape \[128, 64\] in the checkpoint, expected \[96, 64\]/,
    );
    await expect(loadWanDiT(path.join(dir, 'nowhere'))).rejects.toThrow(/cannot open/);
    tf.dispose([...state.values(), ...Object.values(fixture), extra.get('pos_embed')!]);
    model.dispose();
  });
});
