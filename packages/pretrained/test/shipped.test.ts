/**
 * The weights this package ships (weights/): they load with the default call, stay under the size budget,
 * and make a video the oracle judges, which the shipped PAVRM scores.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type Timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  disposeEmbedded,
  type EmbeddedModels,
  embeddedWeightsUrl,
  EMBEDDED_WORLD,
  generateJudged,
  loadEmbedded,
} from '../src/index.js';

function sizeOf(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? sizeOf(p) : statSync(p).size;
  }
  return n;
}

describe('the shipped weights', () => {
  let models: EmbeddedModels;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    models = await loadEmbedded();
  });
  afterAll(() => disposeEmbedded(models));

  it('are the embedded world, at most 20 MB, with the recipe that made them', () => {
    expect(sizeOf(fileURLToPath(embeddedWeightsUrl()))).toBeLessThan(20 * 1024 * 1024);
    expect(models.manifest.world).toEqual(JSON.parse(JSON.stringify(EMBEDDED_WORLD)));
    const recipe = models.manifest.recipe as { seed: number; generator: unknown; quick: boolean };
    expect(recipe.seed).toBe(1);
    expect(recipe.quick).toBe(false);
    expect(models.reward).toBeDefined();
  });

  it('generate a judged video for a prompt, which the PAVRM scores', async () => {
    const prompt = 'a large yellow square moving left';
    const r = await generateJudged(models, { prompts: [prompt, prompt], seed: 'shipped-test' });
    expect(r.latents.shape).toEqual([2, 5, 8, 8, 16]);
    // The oracle finds the prompt's colour in both (the shipped generator draws colour every time).
    expect(r.videos.map((v) => v.colourOk)).toEqual([true, true]);
    const t = [500, 500] as unknown as Timestep[];
    const p = models.reward!.probability(r.latents, t, { text: r.text });
    const probs = Array.from(await p.data());
    expect(probs.every((x) => x > 0 && x < 1)).toBe(true);
    tf.dispose([r.latents, r.text, p]);
  });
});
