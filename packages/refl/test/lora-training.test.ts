/**
 * What trains, in the PRFL loop: all weights, a block range, name patterns, or LoRA adapters. Only the
 * chosen variables reach the tapes and AdamW; everything else is bit-unchanged after training. With LoRA
 * a checkpoint holds only the adapters and their optimizer state, and a resumed run continues exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendsUnderTest,
  Generator,
  initBackend,
  type LatentVideo,
  loadSafetensors,
  shutdownBackend,
} from '@prfl/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPrflRun,
  disposePrflRun,
  type PrflOptions,
  type PrflStepMetrics,
  PrflTrainer,
  prflStep,
  tensorVideoSource,
  type VideoBatch,
} from '../src/index.js';
import { snapshot, TinyReward, TinyVelocity } from './helpers.js';
import { randomWanDiT } from './lora-helpers.js';

describe.each(backendsUnderTest())('what trains on %s', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initBackend({ backend });
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    shutdownBackend();
  });

  const batchOf = (seed: number, b = 2): VideoBatch => {
    const g = new Generator(seed);
    return {
      latents: g.normal([b, 2, 4, 4, 16], 0.3, 0.5) as LatentVideo,
      conditioning: { text: g.normal([b, 4, 32]) as tf.Tensor3D },
    };
  };
  const base: PrflOptions = {
    numSteps: 4,
    accumulationSteps: 1,
    lr: 1e-2,
    textDropout: 0,
    measureMemory: false,
    seed: 3,
  };

  /** Trains `steps` micro-steps; returns the names that received a gradient and the AdamW variables. */
  const train = (options: PrflOptions, steps = 2) => {
    const generator = randomWanDiT(1);
    const reward = new TinyReward(2);
    const batch = batchOf(4);
    const seen = new Set<string>();
    const run = createPrflRun(
      {
        generator,
        reward,
        inspectGradients: (_term, grads) => {
          for (const name of Object.keys(grads)) seen.add(name);
        },
      },
      { ...base, ...options },
    );
    const before = snapshot(generator.namedVariables());
    for (let i = 0; i < steps; i++) prflStep(run, batch);
    const after = snapshot(generator.namedVariables());
    const stable = new Map([...generator.namedVariables()].map(([n, v]) => [v.name, n]));
    const result = {
      trained: run.variables.map((v) => stable.get(v.name) ?? v.name),
      optimized: run.optimizer.variables().map((v) => stable.get(v.name) ?? v.name),
      graded: [...seen].map((n) => stable.get(n) ?? n),
      changed: [...after].filter(([n, a]) => a.some((x, i) => x !== before.get(n)?.[i])).map(([n]) => n),
      unchanged: [...after].filter(([n, a]) => a.every((x, i) => x === before.get(n)?.[i])).map(([n]) => n),
      run,
      generator,
    };
    return {
      ...result,
      dispose: () => {
        disposePrflRun(run);
        generator.dispose();
        reward.dispose();
        tf.dispose([batch.latents, batch.conditioning.text]);
      },
    };
  };

  it('a block range: only blocks lo..hi reach the tapes and AdamW; every other weight is bit-unchanged', () => {
    const t = train({ trainable: { blocks: [1, 2] } });
    expect(t.trained.length).toBeGreaterThan(0);
    expect(t.trained.every((n) => /^blocks\.[12]\./.test(n))).toBe(true);
    expect(t.trained).toHaveLength(2 * t.trained.filter((n) => n.startsWith('blocks.1.')).length);
    expect(t.optimized.sort()).toEqual([...t.trained].sort());
    expect(t.graded.every((n) => /^blocks\.[12]\./.test(n))).toBe(true);
    expect(t.changed.length).toBeGreaterThan(0);
    expect(t.changed.every((n) => /^blocks\.[12]\./.test(n))).toBe(true);
    for (const n of [...t.generator.namedVariables().keys()].filter((n) => !/^blocks\.[12]\./.test(n))) {
      expect(t.unchanged, n).toContain(n);
    }
    t.dispose();
  });

  it('name patterns: include and exclude globs; all (the default) trains every flagged weight', () => {
    const t = train({
      trainable: { include: ['blocks.*.self_attn.*', 'head.*'], exclude: ['*.norm_?.weight'] },
    });
    expect(t.trained.length).toBe(4 * 8 + 3); // q k v o weights and biases per block; head.head (2), modulation
    expect(t.trained.every((n) => /self_attn\.[qkvo]\.|^head\./.test(n))).toBe(true);
    expect(t.changed.every((n) => t.trained.includes(n))).toBe(true);
    t.dispose();
    const all = train({}, 1);
    expect(all.trained).toHaveLength(all.generator.namedVariables().size);
    all.dispose();
  });

  it('a selection that selects nothing, or blocks the model does not have, is refused naming it', () => {
    const generator = randomWanDiT(1);
    const reward = new TinyReward(2);
    expect(() => createPrflRun({ generator, reward }, { trainable: { blocks: [2, 9] } })).toThrow(
      /trainable.blocks: expected a range within the model's blocks 0..3/,
    );
    expect(() => createPrflRun({ generator, reward }, { trainable: { include: ['nope.*'] } })).toThrow(
      /trainable: \{"include":\["nope.\*"\]\} selects none of the generator's/,
    );
    expect(() => createPrflRun({ generator, reward }, { trainable: 'some' as never })).toThrow(
      /trainable: expected 'all' or/,
    );
    expect(() =>
      createPrflRun({ generator, reward }, { lora: { rank: 2 }, trainable: { blocks: [0, 1] } }),
    ).toThrow(/trainable: with lora, choose the adapted layers with lora.targetModules and lora.blocks/);
    const tiny = new TinyVelocity(1);
    expect(() => createPrflRun({ generator: tiny, reward }, { lora: { rank: 2 } })).toThrow(
      /lora: the generator has no setLinearAdapter/,
    );
    tiny.dispose();
    generator.dispose();
    reward.dispose();
  });

  it('LoRA: only the adapters train; the base weights are bit-unchanged and the output moves', () => {
    const t = train({ lora: { rank: 4, targetModules: ['q', 'k', 'v', 'o', 'ffn.0'] } }, 3);
    const lora = t.run.lora;
    expect(lora).not.toBeNull();
    expect(t.trained).toHaveLength((lora?.modules.length ?? 0) * 2);
    expect(t.trained.every((n) => /lora_[AB]/.test(n))).toBe(true);
    expect(t.optimized).toHaveLength(t.trained.length);
    expect(t.graded.every((n) => n.includes('/blocks.') && /lora_[AB]/.test(n))).toBe(true);
    expect(t.changed).toEqual([]); // not one base weight moved
    const bMoved = [...(lora?.namedVariables() ?? [])].filter(
      ([n, v]) => n.endsWith('lora_B.weight') && v.dataSync().some((x) => x !== 0),
    );
    expect(bMoved.length).toBeGreaterThan(0);
    t.dispose();
  });

  it('LoRA checkpoints hold only the adapters and their AdamW state, and resume exactly', async () => {
    const g = new Generator(9);
    const data = {
      latents: g.normal([4, 2, 4, 4, 16], 0.3, 0.5) as LatentVideo,
      conditioning: { text: g.normal([4, 4, 32]) as tf.Tensor3D },
    };
    const source = tensorVideoSource(data);
    const reward = new TinyReward(2);
    const options = { ...base, accumulationSteps: 2, lora: { rank: 4, alpha: 8, seed: 1 }, emaDecay: 0.9 };
    const fit = { epochs: 10, batchSize: 1 };
    const comparable = (m: PrflStepMetrics) => [m.step, m.loss, m.k, m.gradNorm, m.reward];

    const genA = randomWanDiT(1);
    const logA: PrflStepMetrics[] = [];
    const a = new PrflTrainer({ generator: genA, reward }, { ...options, onStep: (m) => logA.push(m) });
    await a.fit(source, { ...fit, maxSteps: 6 });

    const genB = randomWanDiT(1);
    const dir = mkdtempSync(path.join(tmpdir(), 'prfl-refl-lora-ckpt-'));
    dirs.push(dir);
    const b = new PrflTrainer({ generator: genB, reward }, options);
    await b.fit(source, { ...fit, maxSteps: 3, checkpointDir: dir });
    const state = await b.saveCheckpoint(dir);
    const model = await loadSafetensors(path.join(dir, state.files.model));
    expect(Object.keys(model).sort()).toEqual([...(b.run.lora?.namedVariables().keys() ?? [])].sort());
    const moments = await loadSafetensors(path.join(dir, state.files.optimizer));
    const momentKeys = Object.keys(moments).filter((k) => k !== 'optimizer.step_count');
    expect(
      momentKeys.every((k) => /^blocks\.\d+\.(self|cross)_attn\.[qkvo]\.lora_[AB]\.weight\./.test(k)),
    ).toBe(true);
    tf.dispose([...Object.values(model), ...Object.values(moments)]);
    // Without LoRA the same checkpoint is refused, and the other way round.
    const genX = randomWanDiT(1);
    await expect(
      PrflTrainer.resume(dir, { generator: genX, reward }, { ...options, lora: null }),
    ).rejects.toThrow(/holds LoRA adapters but the run has no LoRA/);

    // A new process: the same base weights (loaded again), fresh adapters from another seed.
    const genC = randomWanDiT(1);
    const logC: PrflStepMetrics[] = [];
    const c = await PrflTrainer.resume(
      dir,
      { generator: genC, reward },
      { ...options, lora: { ...options.lora, seed: 77 }, onStep: (m) => logC.push(m) },
    );
    await c.fit(source, { ...fit, maxSteps: 6 });
    expect(logC.map(comparable)).toEqual(logA.slice(3).map(comparable));
    const adaptersA = snapshot(a.run.lora?.namedVariables() ?? new Map());
    for (const [name, v] of snapshot(c.run.lora?.namedVariables() ?? new Map())) {
      expect(Array.from(v), name).toEqual(Array.from(adaptersA.get(name) ?? []));
    }
    expect(snapshot(genC.namedVariables())).toEqual(snapshot(genA.namedVariables()));
    for (const t of [a, b, c]) t.dispose();
    for (const m of [genA, genB, genC, genX, reward]) m.dispose();
    tf.dispose([data.latents, data.conditioning.text]);
  });
});
