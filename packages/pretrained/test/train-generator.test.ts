import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { WanVAE } from '@prfl/models';
import { initBackend, type Timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_WORLD, PromptedGenerator, tokenConditioning } from '../src/index.js';
import { trainGenerator, worldTokenizer } from '../src/recipe/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'prfl-pretrained-gen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const small = {
  clips: 8,
  batchSize: 4,
  checkpointEvery: 2,
  annealSteps: 1,
  dit: { numLayers: 1, inDim: 4, outDim: 4 },
} as const;

describe('trainGenerator (stage 2: text encoder + DiT, SFT)', () => {
  it('trains both models, resumes exactly from its run folder, and reuses the latent cache', async () => {
    const vae = new WanVAE('test', { seed: 1 });
    const whole = await trainGenerator({ vae, steps: 4, ...small, runDir: path.join(tmp, 'a') });
    expect(whole.step).toBe(4);
    // Stopped after 2 of the 4 steps (Ctrl-C): the anneal (the last step at annealLr) is still ahead.
    const stop = new AbortController();
    const partial = await trainGenerator({
      vae,
      steps: 4,
      ...small,
      runDir: path.join(tmp, 'b'),
      signal: stop.signal,
      onProgress: (p) => {
        if (p.phase === 'train' && p.done === 2) stop.abort();
      },
    });
    expect(partial.step).toBe(2);
    const phases: string[] = [];
    const resumed = await trainGenerator({
      vae,
      steps: 4,
      ...small,
      runDir: path.join(tmp, 'b'),
      onProgress: (p) => phases.push(`${p.phase} ${p.done}`),
    });
    expect(resumed.step).toBe(4);
    expect(phases).toEqual(['encode 8', 'train 3', 'train 4']);
    for (const [a, b] of [
      [whole.dit, resumed.dit],
      [whole.textEncoder, resumed.textEncoder],
    ] as const) {
      for (const [name, v] of a.namedVariables()) {
        expect(Array.from(b.namedVariables().get(name)?.dataSync() ?? []), name).toEqual(
          Array.from(v.dataSync()),
        );
      }
    }
    expect(readdirSync(path.join(tmp, 'b')).sort()).toEqual(['latents.safetensors', 'sft']);
    // The anneal changes the last step: without it the weights differ.
    const flat = await trainGenerator({
      vae,
      steps: 4,
      ...small,
      annealSteps: 0,
      runDir: path.join(tmp, 'c'),
    });
    const name = [...whole.dit.namedVariables().keys()][0] as string;
    expect(Array.from(flat.dit.namedVariables().get(name)?.dataSync() ?? [])).not.toEqual(
      Array.from(whole.dit.namedVariables().get(name)?.dataSync() ?? []),
    );
    flat.dit.dispose();
    flat.textEncoder.dispose();
    for (const m of [whole, partial, resumed]) {
      m.dit.dispose();
      m.textEncoder.dispose();
    }
    vae.dispose();
  }, 120_000);

  it('refuses bad options with the name and the value', async () => {
    const vae = new WanVAE('test', { seed: 1 });
    await expect(trainGenerator({ vae, steps: 0 })).rejects.toThrow(
      /steps must be a positive integer, got 0/,
    );
    await expect(trainGenerator({ vae, motionDefectRate: 2 })).rejects.toThrow(/motionDefectRate/);
    await expect(trainGenerator({ vae, steps: 4, annealSteps: 5 })).rejects.toThrow(
      /annealSteps must be an integer in \[0, steps = 4\], got 5/,
    );
    await expect(trainGenerator({ vae, annealLr: 0 })).rejects.toThrow(/annealLr must be in \(0, 1\], got 0/);
    vae.dispose();
  });

  it('PromptedGenerator reads one-hot tokens and equals the text encoder followed by the DiT', async () => {
    const { TransformerTextEncoder, WanDiT } = await import('@prfl/models');
    const textEncoder = new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 });
    const dit = new WanDiT('tiny', { seed: 3 });
    const g = new PromptedGenerator(textEncoder, dit);
    const prompts = ['a large red circle moving left', ''];
    const cond = tokenConditioning(textEncoder, prompts);
    const x = tf.randomNormal([2, 2, 4, 4, 16]) as tf.Tensor5D;
    const ts = [500, 900] as unknown as Timestep[];
    const v = g.predictVelocity(x, ts, cond);
    const { text } = textEncoder.encode(prompts);
    const ref = dit.predictVelocity(x, ts, { text });
    expect(tf.max(tf.abs(tf.sub(v, ref))).dataSync()[0]).toBeLessThan(1e-6);
    expect(() => g.predictVelocity(x, ts, { text })).toThrow(/one-hot tokens \[B, 16, \d+\]/);
    expect(g.namedVariables().size).toBe(textEncoder.namedVariables().size + dit.namedVariables().size);
    tf.dispose([cond.text, x, v, text, ref]);
  });
});
