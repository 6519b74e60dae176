/**
 * Data-parallel PRFL (@prfl/refl/parallel): two worker threads with replicas of the tiny WanDiT generator,
 * the PAVRM and the scheduler train as one process does, up to the order of float additions (PRFL with
 * the SFT term, SFT alone, reward-weighted regression, and an accumulation window); what the workers
 * cannot run is refused by name. Needs the built packages (turbo builds them before the tests).
 */
import * as tf from '@tensorflow/tfjs-core';
import { WanDiT } from '@prfl/models';
import { FlowMatchEulerScheduler } from '@prfl/schedulers';
import { Pavrm } from '@prfl/reward';
import { Generator, initBackend, type LatentVideo, maxRelDiffByName, shutdownBackend } from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PrflOptions,
  type PrflStepMetrics,
  PrflTrainer,
  SFT_PRESET,
  RWR_PRESET,
  tensorVideoSource,
} from '../src/index.js';
import { startPrflWorkers } from '../src/parallel/index.js';

function models() {
  const generator = new WanDiT('tiny', { seed: 1 });
  // Wan's init zeroes the head: give it weights so that every term has a gradient.
  const head = generator.namedVariables().get('head.head.weight') as tf.Variable;
  const value = new Generator('head').normal(head.shape, 0, 0.02);
  head.assign(value);
  value.dispose();
  const source = new WanDiT('tiny', { seed: 2 });
  const backbone = source.truncate(2);
  source.dispose();
  const reward = new Pavrm(backbone, { hidden: [16, 8], seed: 3 });
  // The PAVRM does not own its backbone.
  const dispose = () => {
    generator.dispose();
    reward.dispose();
    backbone.dispose();
  };
  return { generator, reward, dispose };
}

function weights(m: { namedVariables(): ReadonlyMap<string, tf.Variable> }): Map<string, Float32Array> {
  return new Map([...m.namedVariables()].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
}

describe('data-parallel PRFL on two worker threads (wasm)', () => {
  let latents: LatentVideo;
  let text: tf.Tensor3D;
  let nul: tf.Tensor3D;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    const g = new Generator('parallel-prfl');
    latents = g.normal([6, 2, 4, 4, 16]) as LatentVideo;
    text = g.normal([6, 4, 32]) as tf.Tensor3D;
    nul = tf.zeros([1, 4, 32]) as tf.Tensor3D;
  });
  afterAll(() => {
    tf.dispose([latents, text, nul]);
    shutdownBackend();
  });

  const train = async (options: PrflOptions, withWorkers: boolean) => {
    const { generator, reward, dispose } = models();
    const steps: PrflStepMetrics[] = [];
    const tensors: number[] = [];
    const start = tf.memory().numTensors;
    const workers = withWorkers ? await startPrflWorkers({ generator, reward }, { workers: 2 }) : undefined;
    const trainer = new PrflTrainer(
      { generator, reward, nullConditioning: { text: nul } },
      {
        ...options,
        onStep: (m) => {
          steps.push(m);
          tensors.push(tf.memory().numTensors - start);
        },
        ...(workers ? { workers } : {}),
      },
    );
    try {
      const source = tensorVideoSource({ latents, conditioning: { text } });
      await trainer.fit(source, { epochs: 2, batchSize: 3, maxSteps: 4, disposeBatches: true });
      return { steps, tensors, weights: weights(generator) };
    } finally {
      trainer.dispose();
      await workers?.close();
      dispose();
    }
  };

  const same = async (options: PrflOptions) => {
    const before = tf.memory().numTensors;
    const a = await train(options, false);
    const b = await train(options, true);
    // Everything either run made is freed with its trainer, workers and models.
    expect(tf.memory().numTensors).toBe(before);
    expect(b.steps.length).toBe(a.steps.length);
    a.steps.forEach((m, i) => {
      const n = b.steps[i] as PrflStepMetrics;
      expect(n.k).toBe(m.k);
      expect(n.sftSigmas).toEqual(m.sftSigmas);
      expect(n.textDropped).toBe(m.textDropped);
      expect(n.updatesThisStep).toBe(m.updatesThisStep);
      expect(n.loss).toBeCloseTo(m.loss, 4);
      expect(n.rewardLoss).toBeCloseTo(m.rewardLoss, 5);
      expect(n.reward.mean).toBeCloseTo(m.reward.mean, 5);
      expect(n.gradNorm.reward).toBeCloseTo(m.gradNorm.reward, 3);
      expect(n.phases.workers?.ms ?? 0).toBeGreaterThan(0);
    });
    expect(maxRelDiffByName(a.weights, b.weights)).toBeLessThan(1e-3);
    // No leak: the same tensors alive after every micro-step as in one process, and flat after the first
    // update (steps 2 and 4 both end a window of up to 2).
    expect(b.tensors).toEqual(a.tensors);
    expect(b.tensors[3]).toBe(b.tensors[1]);
    return a;
  };

  it('PRFL with the SFT term and text dropout: the same steps and weights', async () => {
    const a = await same({ accumulationSteps: 2, lr: 1e-3, seed: 7, textDropout: 0.3, stepRange: [5, 30] });
    expect(a.steps.filter((m) => m.updatesThisStep === 1)).toHaveLength(2);
  }, 180_000);

  it('SFT alone and reward-weighted regression: the same steps and weights', async () => {
    await same({ ...SFT_PRESET, accumulationSteps: 1, lr: 1e-3, seed: 8 });
    await same({ ...RWR_PRESET, accumulationSteps: 1, lr: 1e-3, seed: 9 });
  }, 180_000);

  it('refuses what the workers cannot run, by name', async () => {
    const { generator, reward, dispose } = models();
    const anchor = new WanDiT('tiny', { seed: 1 });
    const workers = await startPrflWorkers({ generator, reward }, { workers: 1 });
    try {
      expect(
        () =>
          new PrflTrainer(
            { generator, reward, nullConditioning: { text: nul }, anchorModel: anchor },
            { anchorWeight: 0.1, workers },
          ),
      ).toThrow(/workers: the anchor term is not available on worker threads/);
      expect(() => new PrflTrainer({ generator, reward }, { workers: {} as never })).toThrow(
        /startPrflWorkers/,
      );
      // A run on another scheduler than the workers' is refused before anything is computed.
      const euler = new PrflTrainer(
        { generator, reward, nullConditioning: { text: nul }, scheduler: new FlowMatchEulerScheduler() },
        { workers, seed: 1 },
      );
      try {
        const source = tensorVideoSource({ latents, conditioning: { text } });
        await expect(euler.fit(source, { epochs: 1, batchSize: 2, maxSteps: 1 })).rejects.toThrow(
          /the run's scheduler \(FlowMatchEulerScheduler\) is not the one they replicate/,
        );
      } finally {
        euler.dispose();
      }
      await expect(startPrflWorkers({ generator: {} as never }, { workers: 1 })).rejects.toThrow(
        /generator has no replicaRecipe/,
      );
    } finally {
      await workers.close();
      dispose();
      anchor.dispose();
    }
  });
});
