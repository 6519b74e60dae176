/**
 * End to end in Node: the tiny Wan DiT (src/dit), the tiny text encoder and the tiny VAE sample videos
 * from prompts (text-to-video) and from a first frame (image-to-video), with Wan's UniPC and guidance.
 * Random weights (the point is that every piece fits and runs, on every backend, in seconds).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendsUnderTest, Generator, initBackend, shutdownBackend } from '@prfl/tensor';
import { WanDiT } from '../src/dit/index.js';
import { WanPipeline } from '../src/pipeline/index.js';
import { TransformerTextEncoder, WordTokenizer } from '../src/text/index.js';
import { WanVAE } from '../src/vae/index.js';
import { perturbVariables } from './vae-helpers.js';

const PROMPTS = ['a red circle bouncing left to right', 'a blue square moving up'];

describe.each(backendsUnderTest())('tiny DiT + text encoder + VAE on %s', (backend) => {
  let textEncoder: TransformerTextEncoder;
  let vae: WanVAE;
  beforeAll(async () => {
    await initBackend({ backend });
    textEncoder = new TransformerTextEncoder({
      tokenizer: WordTokenizer.fromPrompts(PROMPTS, { textLen: 16 }),
      config: 'tiny',
    });
    vae = new WanVAE('tiny', { seed: 1 });
  });
  afterAll(() => {
    textEncoder.dispose();
    vae.dispose();
    shutdownBackend();
  });

  it('text-to-video: prompts -> latents [B, 3, 4, 4, 16] -> frames [B, 9, 32, 32, 3]', async () => {
    const model = new WanDiT('tiny', { seed: 2 });
    perturbVariables(model.namedVariables(), 'dit');
    const pipeline = new WanPipeline({ model, textEncoder, vae });
    let steps = 0;
    const out = await pipeline.textToVideo({
      prompt: PROMPTS,
      frames: 9,
      height: 32,
      width: 32,
      numSteps: 4,
      guidanceScale: 5,
      seed: 42,
      onProgress: () => {
        steps++;
      },
    });
    expect(steps).toBe(4);
    expect(out.latents.shape).toEqual([2, 3, 4, 4, 16]);
    expect(out.frames?.shape).toEqual([2, 9, 32, 32, 3]);
    const lat = await out.latents.data();
    expect(lat.every((v) => Number.isFinite(v))).toBe(true);
    const frames = await out.frames!.data();
    expect(frames.every((v) => v >= -1 && v <= 1)).toBe(true);
    tf.dispose([out.latents, out.frames!]);
    model.dispose();
  });

  it('image-to-video: the i2v DiT reads 36 channels and CLIP-like tokens', async () => {
    const model = new WanDiT('tiny-i2v', { seed: 3 });
    perturbVariables(model.namedVariables(), 'dit-i2v');
    const pipeline = new WanPipeline({ model, textEncoder, vae });
    const image = new Generator(5).uniform([1, 32, 32, 3], -1, 1);
    const tokens = new Generator(6).normal<tf.Rank.R3>([1, 4, 32]);
    const out = await pipeline.imageToVideo({
      prompt: PROMPTS[0],
      image,
      imageTokens: tokens,
      frames: 5,
      height: 32,
      width: 32,
      numSteps: 3,
      guidanceScale: 4,
    });
    expect(model.config.inDim).toBe(36);
    expect(out.latents.shape).toEqual([1, 2, 4, 4, 16]);
    expect(out.frames?.shape).toEqual([1, 5, 32, 32, 3]);
    expect((await out.latents.data()).every((v) => Number.isFinite(v))).toBe(true);
    tf.dispose([out.latents, out.frames!, image, tokens]);
    model.dispose();
  });
});
