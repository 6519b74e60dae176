import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WanVAE } from '@prfl/models';
import { initBackend, InvalidArgumentError, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainEmbeddedVae, tuneVaeDecoder, type VaePhase, vaeLearningRate } from '../src/recipe/index.js';

async function weightsOf(vae: WanVAE): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of vae.namedVariables()) out.set(k, (await v.data()) as Float32Array);
  return out;
}

describe('trainEmbeddedVae (wasm)', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    dir = await mkdtemp(join(tmpdir(), 'prfl-vae-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await shutdownBackend();
  });

  it('lowers the loss within a few steps', async () => {
    const losses: number[] = [];
    const vae = await trainEmbeddedVae({
      seed: 1,
      phases: [{ name: 'frames', steps: 16, batch: 2, frames: 1 }],
      warmupSteps: 2,
      clipPool: 64,
      statsClips: 0,
      onProgress: (p) => {
        expect(p.phase).toBe('frames');
        expect(p.steps).toBe(16);
        losses.push(p.reconstruction);
      },
    });
    vae.dispose();
    expect(losses).toHaveLength(16);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-4))).toBeLessThan(0.7 * mean(losses.slice(0, 4)));
  });

  it('trains in windows and inflates at the phase start, resuming exactly across the inflation', async () => {
    const phases: VaePhase[] = [
      { name: 'frames', steps: 2, batch: 2, frames: 1, size: 16, lr: 1e-3 },
      { name: 'chunks', steps: 2, batch: 1, frames: 5, size: 32, inflate: true },
    ];
    const common = { seed: 'windows', phases, warmupSteps: 1, clipPool: 8, statsClips: 0 };
    const whole = await trainEmbeddedVae(common);
    const expected = await weightsOf(whole);
    whole.dispose();
    const ckpt = join(dir, 'windows');
    // Stopped exactly at the end of the single-frame phase: the resumed run inflates first.
    (await trainEmbeddedVae({ ...common, checkpointDir: ckpt, checkpointEvery: 2, stopAfter: 2 })).dispose();
    const resumed = await trainEmbeddedVae({ ...common, checkpointDir: ckpt, checkpointEvery: 2 });
    const got = await weightsOf(resumed);
    for (const [k, v] of expected) expect(got.get(k), k).toEqual(v);
    resumed.dispose();
    await expect(
      trainEmbeddedVae({ phases: [{ name: 'x', steps: 1, batch: 1, frames: 1, size: 12 }] }),
    ).rejects.toThrow(/size must be a multiple of 8 up to 64, got 12/);
  });

  it('resumes from a checkpoint to bit-identical weights and latent statistics', async () => {
    const phases: VaePhase[] = [
      { name: 'frames', steps: 3, batch: 1, frames: 1 },
      { name: 'chunks', steps: 2, batch: 1, frames: 5, beta: 1e-4, sample: true },
    ];
    const common = { seed: 'resume', phases, warmupSteps: 2, clipPool: 16, statsClips: 1 };
    const whole = await trainEmbeddedVae(common);
    const expected = await weightsOf(whole);
    const stats = whole.config;
    whole.dispose();

    const ckpt = join(dir, 'run');
    const first = await trainEmbeddedVae({
      ...common,
      checkpointDir: ckpt,
      checkpointEvery: 2,
      stopAfter: 4,
    });
    first.dispose();
    const files = await readdir(ckpt);
    expect(files).toContain('vae-train.json');
    expect(files.filter((f) => f.endsWith('.safetensors')).sort()).toEqual([
      'vae-model-00000004.safetensors',
      'vae-optimizer-00000004.safetensors',
    ]);
    const steps: number[] = [];
    const resumed = await trainEmbeddedVae({
      ...common,
      checkpointDir: ckpt,
      checkpointEvery: 2,
      onProgress: (p) => {
        steps.push(p.step);
      },
    });
    expect(steps).toEqual([5]);
    const got = await weightsOf(resumed);
    for (const [k, v] of expected) expect(got.get(k), k).toEqual(v);
    expect(resumed.config.latentMean).toEqual(stats.latentMean);
    expect(resumed.config.latentStd).toEqual(stats.latentStd);
    resumed.dispose();

    await expect(trainEmbeddedVae({ ...common, seed: 'other', checkpointDir: ckpt })).rejects.toThrow(/seed/);

    // Aborted after step 2: checkpointed there, and the run resumes from it to the same weights.
    const abortDir = join(dir, 'abort');
    const controller = new AbortController();
    const stoppedEarly = await trainEmbeddedVae({
      ...common,
      checkpointDir: abortDir,
      checkpointEvery: 100,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 2) controller.abort();
      },
    });
    stoppedEarly.dispose();
    expect((await readdir(abortDir)).filter((f) => f.startsWith('vae-model-'))).toEqual([
      'vae-model-00000002.safetensors',
    ]);
    const finished = await trainEmbeddedVae({ ...common, checkpointDir: abortDir });
    const again = await weightsOf(finished);
    for (const [k, v] of expected) expect(again.get(k), k).toEqual(v);
    finished.dispose();
  });

  it('refuses bad options with a clear error', async () => {
    const bad = async (options: Parameters<typeof trainEmbeddedVae>[0], pattern: RegExp) => {
      const p = trainEmbeddedVae(options);
      await expect(p).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(p).rejects.toThrow(pattern);
    };
    await bad({ phases: [] }, /phases is empty/);
    await bad({ phases: [{ name: 'x', steps: 1, batch: 1, frames: 4 }] }, /frames must be 1 \+ 4k/);
    await bad({ phases: [{ name: 'x', steps: 1, batch: 1, frames: 21 }] }, /at most the world's 17 frames/);
    await bad({ phases: [{ name: 'x', steps: 0, batch: 1, frames: 1 }] }, /steps must be an integer >= 1/);
    await bad({ phases: [{ name: 'x', steps: 1, batch: 1.5, frames: 1 }] }, /batch/);
    await bad(
      { phases: [{ name: 'x', steps: 1, batch: 1, frames: 1, reconstruction: 'l2' as 'l1' }] },
      /'l1' or 'mse'/,
    );
    await bad({ lr: -1 }, /lr must be a positive/);
    await bad({ lr: Number.NaN }, /lr must be a positive/);
    await bad({ motionDefectRate: 2 }, /motionDefectRate/);
    await bad({ checkpointEvery: 0 }, /checkpointEvery/);
    await bad({ checkpointDir: '' }, /checkpointDir/);
    await bad({ seed: Number.POSITIVE_INFINITY }, /seed/);
  });

  it('tuneVaeDecoder trains the decoder alone: encoder weights, latents and statistics stay bit-identical', async () => {
    const vae = await trainEmbeddedVae({
      seed: 3,
      phases: [{ name: 'frames', steps: 2, batch: 2, frames: 1 }],
      clipPool: 16,
      statsClips: 2,
    });
    // A variable frozen by the caller stays frozen (and out of the optimizer).
    const frozen = vae.namedVariables().get('encoder.conv1.bias')!;
    frozen.trainable = false;
    const before = await weightsOf(vae);
    const stats = { mean: [...vae.config.latentMean], std: [...vae.config.latentStd] };
    const losses: number[] = [];
    const tuned = await tuneVaeDecoder(vae, {
      seed: 3,
      phases: [{ name: 'decoder', steps: 3, batch: 1, frames: 5, decoderOnly: true }],
      clipPool: 8,
      onProgress: (p) => {
        losses.push(p.loss);
      },
    });
    expect(tuned).toBe(vae);
    expect(losses).toHaveLength(3);
    const after = await weightsOf(vae);
    let decoderChanged = 0;
    for (const [k, v] of before) {
      const decoder = k.startsWith('decoder.') || k.startsWith('conv2.');
      if (decoder) decoderChanged += after.get(k)!.some((x, i) => x !== v[i]) ? 1 : 0;
      else expect(after.get(k), k).toEqual(v);
    }
    expect(decoderChanged).toBeGreaterThan(10);
    expect({ mean: [...vae.config.latentMean], std: [...vae.config.latentStd] }).toEqual(stats);
    // Every variable is as trainable afterwards as before.
    expect(frozen.trainable).toBe(false);
    expect(vae.trainableVariables()).toHaveLength(vae.namedVariables().size - 1);
    await expect(
      tuneVaeDecoder(vae, { phases: [{ name: 'all', steps: 1, batch: 1, frames: 1 }] }),
    ).rejects.toThrow(/decoderOnly: true/);
    vae.dispose();
  });

  it('warms up, holds and decays the learning rate', () => {
    const o = { lr: 1, warmupSteps: 10, decayFraction: 0.5, finalLrFraction: 0.1 };
    expect(vaeLearningRate(0, 100, o)).toBeCloseTo(0.1);
    expect(vaeLearningRate(20, 100, o)).toBe(1);
    expect(vaeLearningRate(50, 100, o)).toBe(1);
    expect(vaeLearningRate(75, 100, o)).toBeCloseTo(0.55);
    expect(vaeLearningRate(99, 100, o)).toBeGreaterThan(0.1);
    expect(vaeLearningRate(99, 100, o)).toBeLessThan(0.11);
  });
});

describe('inflateVae', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });
  afterAll(async () => {
    await shutdownBackend();
  });

  it('turns a VAE into a per-frame one: a still clip decodes to the single-frame decoding in every frame', async () => {
    const { WanVAE } = await import('@prfl/models');
    const tf = await import('@tensorflow/tfjs-core');
    const { inflateVae } = await import('../src/recipe/index.js');
    const vae = new WanVAE('test', { seed: 5 });
    const frame = tf.randomUniform(
      [1, 1, 16, 16, 3],
      -1,
      1,
      'float32',
      3,
    ) as import('@tensorflow/tfjs-core').Tensor5D;
    const still = tf.tile(frame, [1, 9, 1, 1, 1]) as typeof frame;
    const before = vae.decode(vae.encode(still));
    const one = vae.decode(vae.encode(frame));
    const spread = (x: typeof frame) =>
      tf
        .max(tf.abs(tf.sub(x, tf.tile(tf.slice(one, [0, 0, 0, 0, 0], [1, 1, -1, -1, -1]), [1, 9, 1, 1, 1]))))
        .dataSync()[0] as number;
    expect(spread(before)).toBeGreaterThan(1e-3); // random temporal taps mix frames
    inflateVae(vae);
    const after = vae.decode(vae.encode(still));
    const oneAfter = vae.decode(vae.encode(frame));
    expect(tf.max(tf.abs(tf.sub(oneAfter, one))).dataSync()[0]).toBe(0); // single frames unchanged
    expect(spread(after)).toBeLessThan(1e-5);
    tf.dispose([frame, still, before, one, after, oneAfter]);
    vae.dispose();
  });
});
