/**
 * Per-block gradient checkpointing of the taped generator forward passes (the SFT term's and step k's)
 * through @prfl/tensor's segmented backprop: the same gradients as the plain tape, with LoRA too, a
 * lower memory peak in the backward phase, no leaks, and clear errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  formatBytes,
  Generator,
  initBackend,
  type LatentVideo,
  type PhaseReport,
  shutdownBackend,
} from '@prfl/tensor';
import { Pavrm } from '@prfl/reward';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPrflRun,
  disposePrflRun,
  type GradientTerm,
  type PrflOptions,
  prflStep,
  type VideoBatch,
} from '../src/index.js';
import { TinyReward, TinyVelocity } from './helpers.js';
import { randomWanDiT } from './lora-helpers.js';

describe.each(backendsUnderTest())('gradient checkpointing on %s', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    shutdownBackend();
  });

  const setup = (shape: [number, number, number] = [2, 4, 4], b = 2) => {
    const generator = randomWanDiT(1);
    const source = randomWanDiT(2);
    const backbone = source.truncate(2);
    source.dispose();
    const reward = new Pavrm(backbone, { hidden: [16, 8], seed: 3 });
    const g = new Generator(4);
    const batch: VideoBatch = {
      latents: g.normal([b, ...shape, 16], 0.3, 0.5) as LatentVideo,
      conditioning: { text: g.normal([b, 4, 32]) as tf.Tensor3D },
    };
    const nul = { text: tf.zeros([1, 4, 32]) as tf.Tensor3D };
    const dispose = () => {
      generator.dispose();
      reward.dispose();
      backbone.dispose();
      tf.dispose([batch.latents, batch.conditioning.text, nul.text]);
    };
    return { generator, reward, batch, nul, dispose };
  };

  /** One micro-step's raw gradients per term, by stable name (no update: the window never fills). */
  const stepGrads = (s: ReturnType<typeof setup>, options: PrflOptions) => {
    const grads: Record<GradientTerm, Map<string, Float32Array>> = { sft: new Map(), reward: new Map() };
    const run = createPrflRun(
      {
        generator: s.generator,
        reward: s.reward,
        nullConditioning: s.nul,
        inspectGradients: (term, gr) => {
          for (const [name, g] of Object.entries(gr)) grads[term].set(name, g.dataSync() as Float32Array);
        },
      },
      {
        numSteps: 6,
        stepRange: [3, 3],
        textDropout: 0.5,
        accumulationSteps: 1_000_000,
        seed: 8,
        ...options,
      },
    );
    const stable = new Map(
      [...(run.lora?.namedVariables() ?? s.generator.namedVariables())].map(([n, v]) => [v.name, n]),
    );
    const metrics = prflStep(run, s.batch);
    disposePrflRun(run);
    const byStable = (m: Map<string, Float32Array>) =>
      new Map([...m].map(([n, g]) => [stable.get(n) ?? n, g]));
    return { sft: byStable(grads.sft), reward: byStable(grads.reward), metrics };
  };

  /** max |a - b| over all variables, relative to max |a|. */
  const relDiff = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    let diff = 0;
    let scale = 0;
    for (const [name, ga] of a) {
      const gb = b.get(name) as Float32Array;
      for (let i = 0; i < ga.length; i++) {
        diff = Math.max(diff, Math.abs((ga[i] as number) - (gb[i] as number)));
        scale = Math.max(scale, Math.abs(ga[i] as number));
      }
    }
    expect(scale).toBeGreaterThan(0);
    return diff / scale;
  };

  it.each([
    ['all weights, one block per segment', { gradientCheckpointing: true }],
    ['all weights, two blocks per segment', { gradientCheckpointing: { blocksPerSegment: 2 } }],
    ['LoRA on q, k, v, o and ffn.0', { gradientCheckpointing: true, lora: { rank: 4, seed: 2 } }],
    ['a block range (blocks 1..2)', { gradientCheckpointing: true, trainable: { blocks: [1, 2] } }],
  ] as Array<[string, PrflOptions]>)(
    'the step’s gradients (SFT and reward terms) equal the plain tape’s: %s',
    (name, options) => {
      const s = setup();
      const lora = options.lora
        ? { lora: { ...options.lora, targetModules: ['q', 'k', 'v', 'o', 'ffn.0'] } }
        : {};
      const plain = stepGrads(s, { ...options, ...lora, gradientCheckpointing: false });
      const ckpt = stepGrads(s, { ...options, ...lora });
      expect(ckpt.metrics.loss).toBeCloseTo(plain.metrics.loss, 5);
      const errors = { sft: relDiff(plain.sft, ckpt.sft), reward: relDiff(plain.reward, ckpt.reward) };
      console.log(`[${backend}] ${name}: max |ckpt - plain| / max |plain| =`, errors);
      expect(errors.sft).toBeLessThan(1e-5);
      expect(errors.reward).toBeLessThan(1e-5);
      s.dispose();
    },
  );

  it('keeps only block boundaries: the backward phase’s peak tensor memory is lower', () => {
    // 2 x 12 x 12 latents: 72 tokens per video, where the activations outweigh the tiny weights.
    const s = setup([2, 12, 12], 1);
    const measure = (gradientCheckpointing: boolean) => {
      const run = createPrflRun(
        { generator: s.generator, reward: s.reward, nullConditioning: s.nul },
        { numSteps: 4, stepRange: [1, 1], accumulationSteps: 1_000_000, seed: 8, gradientCheckpointing },
      );
      prflStep(run, s.batch); // warm-up: RoPE tables, lazily built caches
      run.meter.reset();
      const m = prflStep(run, s.batch);
      const phases = new Map(run.meter.report().phases.map((p) => [p.phase, p]));
      disposePrflRun(run);
      return { m, phases };
    };
    const plain = measure(false);
    const ckpt = measure(true);
    const row = (p: PhaseReport | undefined) =>
      `peak total ${formatBytes(p?.peakTotalBytes ?? 0)}, rise ${formatBytes(p?.peakBytes ?? 0)}, ${(p?.meanMs ?? 0).toFixed(0)} ms`;
    for (const phase of ['sft', 'taped-step', 'reward', 'backward']) {
      console.log(
        `[${backend}] ${phase.padEnd(10)} plain: ${row(plain.phases.get(phase))} | checkpointed: ${row(ckpt.phases.get(phase))}`,
      );
    }
    const peak = (r: typeof plain, phase: string) => r.phases.get(phase)?.peakTotalBytes ?? 0;
    expect(peak(ckpt, 'backward')).toBeLessThan(peak(plain, 'backward'));
    expect(peak(ckpt, 'sft')).toBeLessThan(peak(plain, 'sft'));
    // What the taped forward leaves alive for the backward pass: everything vs block boundaries.
    expect(ckpt.m.phases['taped-step']?.peakBytes ?? 0).toBeLessThan(
      plain.m.phases['taped-step']?.peakBytes ?? 0,
    );
    s.dispose();
  });

  it('leaves no tensor behind over steps with updates, and refuses a generator without segments', () => {
    const s = setup();
    const run = createPrflRun(
      { generator: s.generator, reward: s.reward, nullConditioning: s.nul },
      {
        numSteps: 4,
        accumulationSteps: 2,
        lr: 1e-3,
        seed: 1,
        gradientCheckpointing: true,
        lora: { rank: 2 },
      },
    );
    prflStep(run, s.batch);
    prflStep(run, s.batch);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) prflStep(run, s.batch);
    expect(run.updates).toBe(3);
    expect(tf.memory().numTensors).toBe(tensors);
    disposePrflRun(run);

    const tiny = new TinyVelocity(1);
    const tinyReward = new TinyReward(2);
    expect(() =>
      createPrflRun({ generator: tiny, reward: tinyReward }, { gradientCheckpointing: true }),
    ).toThrow(/gradientCheckpointing: the generator has no segments/);
    expect(() =>
      createPrflRun(
        { generator: tiny, reward: tinyReward },
        { gradientCheckpointing: { blocksPerSegment: 0 } },
      ),
    ).toThrow(/gradientCheckpointing: expected true, false or \{ blocksPerSegment: a positive integer \}/);
    tiny.dispose();
    tinyReward.dispose();
    s.dispose();
  });
});
