/**
 * The DiT and VAE loaders take PyTorch state dicts (torch.save zip archives: diffusers'
 * diffusion_pytorch_model.bin, Wan's Wan2.1_VAE.pth) where they take safetensors, detected from the bytes.
 * The archives are written by @prfl/tensor's test helper, whose output real torch.load reads; the
 * reader itself is tested against files PyTorch wrote in packages/tensor.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { initBackend, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { torchStateDictZip } from '../../tensor/test/torch-zip-helpers.js';
import {
  loadWanDiT,
  loadWanDiTFromBytes,
  loadWanVAE,
  serializeWanDiT,
  WanDiT,
  WanVAE,
} from '../src/index.js';
import { maxDiff, randomize } from './fixtures.js';

/** A model's state dict (PyTorch layouts, float32) as torch.save would write it. */
function torchBytes(state: Map<string, tf.Tensor>): Uint8Array {
  return torchStateDictZip(
    [...state].map(([name, t]) => {
      const values = t.dataSync() as Float32Array;
      return {
        name,
        dtype: 'F32',
        shape: t.shape,
        data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      };
    }),
  );
}

async function worstDiff(
  a: ReadonlyMap<string, tf.Variable>,
  b: ReadonlyMap<string, tf.Variable>,
): Promise<number> {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let worst = 0;
  for (const [k, v] of a) worst = Math.max(worst, await maxDiff(v, b.get(k) as tf.Variable));
  return worst;
}

describe('PyTorch state dicts in the model loaders', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    dir = mkdtempSync(path.join(tmpdir(), 'prfl-torch-weights-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    shutdownBackend();
  });

  it('loadWanDiT reads diffusion_pytorch_model.bin in a folder, a .pt path, and bytes', async () => {
    const model = new WanDiT('tiny', { seed: 11 });
    randomize(model.namedVariables(), 'torch-bin');
    const state = model.stateDict();
    const weights = torchBytes(state);
    const { config } = await serializeWanDiT(model);
    const folder = path.join(dir, 'dit');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'config.json'), config);
    writeFileSync(path.join(folder, 'diffusion_pytorch_model.bin'), weights);
    writeFileSync(path.join(folder, 'weights.pt'), weights);
    for (const loaded of [
      await loadWanDiT(folder),
      await loadWanDiT(path.join(folder, 'weights.pt')),
      await loadWanDiTFromBytes(config, weights),
    ]) {
      expect(loaded.config).toEqual(model.config);
      expect(await worstDiff(model.namedVariables(), loaded.namedVariables())).toBe(0);
      loaded.dispose();
    }
    for (const t of state.values()) t.dispose();
    model.dispose();
  });

  it('loadWanVAE reads a .pth state dict (as Wan ships Wan2.1_VAE.pth), given the config', async () => {
    const vae = new WanVAE('test', { seed: 3 });
    const state = vae.stateDict();
    const file = path.join(dir, 'vae.pth');
    writeFileSync(file, torchBytes(state));
    const loaded = await loadWanVAE(file, { config: vae.config });
    expect(await worstDiff(vae.namedVariables(), loaded.namedVariables())).toBe(0);
    // A PyTorch file carries no config: the error says to pass one.
    await expect(loadWanVAE(file)).rejects.toThrow(/pass options\.config/);
    for (const t of state.values()) t.dispose();
    vae.dispose();
    loaded.dispose();
  });
});
