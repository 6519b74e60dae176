/**
 * Generation over worker threads (@prfl/pretrained/parallel): the shipped generator on two workers makes
 * the same videos, labels and latents, bit for bit, as generateJudged in this process; the DiT's weights
 * follow the main thread's; progress counts every video; what the workers cannot do is refused.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedModels, generateJudged, loadEmbedded } from '../src/index.js';
import { type GenerationWorkers, startGenerationWorkers } from '../src/parallel/index.js';

describe('generateJudged on worker threads', () => {
  let models: EmbeddedModels;
  let workers: GenerationWorkers;
  const prompts = [
    'a large red circle moving left',
    'a large blue square moving up',
    'a large green triangle moving down',
    'a large yellow circle moving right',
    'a large red square moving down',
  ];

  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    models = await loadEmbedded({ reward: false });
    workers = await startGenerationWorkers(models, { workers: 2 });
  });
  afterAll(async () => {
    await workers?.close();
    models?.dit.dispose();
    models?.vae.dispose();
    models?.textEncoder.dispose();
  });

  const same = async (options: { seed: string; batchSize: number; firstIndex?: number }) => {
    const o = { prompts, numSteps: 2, ...options };
    const here = await generateJudged(models, o);
    const progress: number[] = [];
    const there = await workers.generateJudged({ ...o, onProgress: (d) => progress.push(d) });
    try {
      expect(there.videos).toEqual(here.videos);
      expect(Array.from(there.latents.dataSync())).toEqual(Array.from(here.latents.dataSync()));
      expect(Array.from(there.text.dataSync())).toEqual(Array.from(here.text.dataSync()));
      expect(Math.max(...progress)).toBe(prompts.length);
      return here.videos;
    } finally {
      tf.dispose([here.latents, here.text, there.latents, there.text]);
    }
  };

  it('makes the same videos bit for bit, in batches spread over the workers', async () => {
    const videos = await same({ seed: 'workers', batchSize: 2 });
    expect(videos.map((v) => v.seed)).toEqual(prompts.map((_, i) => `workers-${i}`));
    const shifted = await same({ seed: 'workers', batchSize: 3, firstIndex: 7 });
    expect(shifted[0]?.seed).toBe('workers-7');
  }, 120_000);

  it('follows the DiT after its weights change', async () => {
    const w = models.dit.namedVariables().get('head.head.bias') as tf.Variable;
    const before = tf.clone(w);
    try {
      w.assign(tf.add(w, 0.05));
      await same({ seed: 'changed', batchSize: 3 });
    } finally {
      w.assign(before);
      before.dispose();
    }
  }, 120_000);

  it('refuses what it cannot do, by name', async () => {
    await expect(workers.generateJudged({ prompts: [], seed: 1 })).rejects.toThrow(
      /non-empty array of strings/,
    );
    await expect(workers.generateJudged({ prompts, seed: 1, batchSize: 0 })).rejects.toThrow(
      /batchSize must be a positive integer, got 0/,
    );
    await expect(
      workers.generateJudged({ prompts, seed: 1, model: models.dit } as unknown as Parameters<
        GenerationWorkers['generateJudged']
      >[0]),
    ).rejects.toThrow(/model option is not available/);
    await expect(generateJudged(models, { prompts, seed: 1, firstIndex: -1 })).rejects.toThrow(
      /firstIndex must be a non-negative integer, got -1/,
    );
  });
});
