import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { Pavrm } from '@prfl/reward';
import { initBackend, type Timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeEmbedded, EMBEDDED_WORLD, loadEmbedded, MANIFEST_FILE } from '../src/index.js';
import { saveEmbedded, worldTokenizer } from '../src/recipe/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-pretrained-embedded-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

async function outputs(m: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE; reward?: Pavrm }) {
  const x = tf.tidy(() => tf.randomNormal([1, 2, 4, 4, 4], 0, 1, 'float32', 7)) as tf.Tensor5D;
  const { text, mask } = m.textEncoder.encode(['a large red circle moving left']);
  const t = [600] as unknown as Timestep[];
  const v = m.dit.predictVelocity(x, t, { text });
  const frames = m.vae.decode(x);
  const r = m.reward?.score(x, t, { text });
  const out = {
    v: Array.from(await v.data()),
    frames: Array.from(await frames.data()),
    r: r === undefined ? [] : Array.from(await r.data()),
  };
  tf.dispose([x, text, mask, v, frames, r as tf.Tensor]);
  return out;
}

describe('saveEmbedded / loadEmbedded', () => {
  it('round-trips every model bit-exactly, from a path, a file URL or a reader', async () => {
    const vae = new WanVAE('test', { seed: 1 });
    const textEncoder = new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 });
    const dit = new WanDiT({ numLayers: 2, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 });
    const reward = new Pavrm(dit.truncate(1), { hidden: [8], seed: 4 });
    // Train-like change of the reward's block, so that its copy differs from the DiT's.
    for (const v of reward.namedVariables().values()) if (v.trainable) v.assign(tf.add(v, 0.01));
    const dir = path.join(tmp, 'w');
    await saveEmbedded({ vae, textEncoder, dit, reward }, dir, {
      world: EMBEDDED_WORLD,
      recipe: { command: 'test' },
      rewardBlocks: 1,
    });
    const want = await outputs({ vae, textEncoder, dit, reward });
    for (const from of [
      dir,
      pathToFileURL(`${dir}/`),
      async (name: string) => new Uint8Array(readFileSync(path.join(dir, name))),
    ]) {
      const m = await loadEmbedded({ from });
      expect(m.manifest.recipe).toEqual({ command: 'test' });
      expect(await outputs(m)).toEqual(want);
      expect([...m.dit.namedVariables().values()].every((v) => !v.trainable)).toBe(true);
      disposeEmbedded(m);
    }
    // Loading and disposing leaves nothing behind: the PAVRM's own backbone copy is freed too.
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) disposeEmbedded(await loadEmbedded({ from: dir }));
    expect(tf.memory().numTensors).toBe(before);
    const noReward = await loadEmbedded({ from: dir, reward: false });
    expect(noReward.reward).toBeUndefined();
    disposeEmbedded(noReward);
    disposeEmbedded({ manifest: undefined as never, vae, textEncoder, dit, reward });
  }, 60_000);

  it('says which file is missing or wrong', async () => {
    await expect(loadEmbedded({ from: path.join(tmp, 'nowhere') })).rejects.toThrow(
      /cannot read .*nowhere.*manifest\.json/,
    );
    const dir = path.join(tmp, 'bad');
    rmSync(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ format: 'other' }));
    await expect(loadEmbedded({ from: dir })).rejects.toThrow(
      /expected format "prfl-embedded\/1", got "other"/,
    );
    writeFileSync(path.join(dir, MANIFEST_FILE), '{not json');
    await expect(loadEmbedded({ from: dir })).rejects.toThrow(/manifest\.json: not UTF-8 JSON/);
    writeFileSync(
      path.join(dir, MANIFEST_FILE),
      JSON.stringify({ format: 'prfl-embedded/1', rewardBlocks: 1 }),
    );
    await expect(loadEmbedded({ from: dir })).rejects.toThrow(/cannot read .*vae\.safetensors/);
  });
});
