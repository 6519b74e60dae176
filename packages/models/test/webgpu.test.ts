/**
 * WebGPU end to end at a reduced size: the tiny DiT + text encoder sample latents with Wan's UniPC and
 * guidance on webgpu (SwiftShader where there is no GPU, see packages/tensor/test/webgpu.test.ts) and
 * agree with the cpu backend; plus one DiT forward and gradient. Skipped (loudly) outside CI where no
 * adapter exists.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Generator, initBackend, maxAbsDiff, shutdownBackend, timestep } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WanDiT } from '../src/dit/index.js';
import { WanPipeline } from '../src/pipeline/index.js';
import { TransformerTextEncoder, WordTokenizer } from '../src/text/index.js';
import { perturbVariables } from './vae-helpers.js';

const PROMPTS = ['a red circle bouncing left to right'];
const inCi = process.env.CI === 'true' || process.env.PRFL_REQUIRE_WEBGPU === '1';

async function sampleAndForward(): Promise<{
  latents: Float32Array;
  velocity: Float32Array;
  grad: Float32Array;
}> {
  const textEncoder = new TransformerTextEncoder({
    tokenizer: WordTokenizer.fromPrompts(PROMPTS, { textLen: 16 }),
    config: 'tiny',
  });
  const model = new WanDiT('tiny', { seed: 2 });
  perturbVariables(model.namedVariables(), 'dit');
  const pipeline = new WanPipeline({ model, textEncoder });
  const out = await pipeline.textToVideo({
    prompt: PROMPTS,
    frames: 5,
    height: 32,
    width: 32,
    numSteps: 3,
    guidanceScale: 5,
    seed: 7,
  });
  const latents = (await out.latents.data()) as Float32Array;
  const x = new Generator('x').normal<tf.Rank.R5>(
    out.latents.shape as [number, number, number, number, number],
  );
  const cond = textEncoder.encode(PROMPTS);
  const t = [timestep(700)];
  const velocity = (await model.predictVelocity(x, t, cond).data()) as Float32Array;
  const grad = (await tf
    .grad((xi: tf.Tensor) => tf.sum(tf.square(model.predictVelocity(xi as tf.Tensor5D, t, cond))))(x)
    .data()) as Float32Array;
  tf.dispose([out.latents, x]);
  model.dispose();
  textEncoder.dispose();
  return { latents, velocity, grad };
}

describe('tiny DiT sampling on webgpu matches cpu', () => {
  let want: Awaited<ReturnType<typeof sampleAndForward>>;
  let available = true;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    want = await sampleAndForward();
    try {
      await initBackend({ backend: 'webgpu' });
      tf.env().set('WEBGPU_CPU_FORWARD', false);
    } catch (e) {
      if (inCi) throw e;
      available = false;
      console.warn(`SKIPPING the models WebGPU test: ${e instanceof Error ? e.message : String(e)}`);
    }
  }, 240_000);
  afterAll(() => shutdownBackend());

  it('samples the same latents, velocity and input gradient', async () => {
    if (!available) return;
    const got = await sampleAndForward();
    expect(got.latents.length).toBe(want.latents.length);
    expect(maxAbsDiff(got.latents, want.latents)).toBeLessThan(2e-3);
    expect(maxAbsDiff(got.velocity, want.velocity)).toBeLessThan(2e-3);
    expect(maxAbsDiff(got.grad, want.grad)).toBeLessThan(1e-2);
  }, 240_000);
});
