/**
 * `prfl demo`: the paper in miniature, on the embedded models.
 *
 *   1. reward   the base generator makes videos for the training prompts, the oracle labels their motion,
 *               a PAVRM on a copy of the DiT's first blocks learns the label at every noise level;
 *   2. before   the base generator makes videos for held-out prompts and seeds: the oracle's rates, and
 *               the PAVRM's accuracy per sigma bucket on them;
 *   3. prfl     the DiT is fine-tuned with PRFL against that PAVRM (reward on noisy latents, one taped
 *               denoising step at a random k, the SFT term on real good clips);
 *   4. after    the same held-out prompts and seeds with the fine-tuned DiT: the oracle's rates again;
 *   5. control  (with `control`) the base DiT fine-tuned by the SFT term alone, the same clips, steps and
 *               learning rate, judged on the same prompts and seeds: what the reward adds to it.
 *
 * Every stage keeps its result in the run folder (caches, checkpoints, JSON written atomically), so a run
 * stopped anywhere continues with `--resume` to the same result.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt, type Video } from '@prfl/datasets';
import {
  disposePavrm,
  type EmbeddedModels,
  finetuneWithPrfl,
  generateJudged,
  type JudgedVideo,
  worldPrompts,
} from '@prfl/pretrained';
import { type GenerationWorkers, startGenerationWorkers } from '@prfl/pretrained/parallel';
import { type JudgedGenerator, saveEmbedded, trainReward } from '@prfl/pretrained/recipe';
import { type PrflStepMetrics, type PrflTrainerOptions, SFT_PRESET } from '@prfl/refl';
import { evaluateBySigmaBucket, type Pavrm } from '@prfl/reward';
import type { LatentVideo } from '@prfl/tensor';
import { type OracleRates, oracleRates } from '../oracle-rates.js';
import { throwIfInterrupted } from '../interrupt.js';
import { writeTextAtomic } from '../run-dir.js';
import { RUN_WEIGHTS_DIR } from '../run-layout.js';

/** The demo's budgets. */
export interface DemoSettings {
  /** Videos the PAVRM is trained on (training prompts). */
  rewardVideos: number;
  rewardSteps: number;
  /** Held-out videos judged before and after. */
  evalVideos: number;
  prflSteps: number;
  prflBatch: number;
  prflLr: number;
  /** Sampling steps and guidance of every generation (the embedded sampler). */
  numSteps: number;
  guidanceScale: number;
  /** Videos shown side by side in the report. */
  samples: number;
  seed: number;
  /**
   * Also fine-tune the base DiT with PRFL's SFT term alone (no reward; same clips, steps, batch and
   * learning rate) and judge it on the same prompts and seeds: the control that says what the reward adds.
   */
  control?: boolean;
}

export const DEMO_DEFAULTS: Readonly<DemoSettings> = Object.freeze({
  rewardVideos: 256,
  rewardSteps: 400,
  evalVideos: 112,
  prflSteps: 70,
  prflBatch: 4,
  prflLr: 5e-5,
  numSteps: 20,
  guidanceScale: 4,
  samples: 6,
  seed: 1,
  control: false,
});

/** Seconds-long budgets for tests. */
export const DEMO_QUICK: Readonly<Partial<DemoSettings>> = Object.freeze({
  rewardVideos: 8,
  rewardSteps: 4,
  evalVideos: 7,
  prflSteps: 3,
  prflBatch: 2,
  numSteps: 3,
  samples: 2,
});

export type { OracleRates };

export interface DemoResult {
  settings: DemoSettings;
  backend: string;
  reward: {
    trainVideos: number;
    trainMotionGoodRate: number;
    /** Accuracy per sigma bucket on the held-out videos of the base generator. */
    buckets: {
      low: number;
      high: number;
      accuracy: number;
      rocAuc: number;
      /** ROC-AUC over (good, bad) pairs of one prompt: 0.5 for a reward that knows only the prompt. */
      withinPromptAuc: number;
      n: number;
    }[];
    average: number;
    /** ROC-AUC averaged over the buckets: with few good videos, accuracy is near the majority baseline. */
    averageRocAuc: number;
    /** Within-prompt ROC-AUC averaged over the buckets: what the reward reads from the video itself. */
    averageWithinPromptAuc: number;
    /** Held-out videos labelled good by the oracle (the baseline an accuracy must beat is max(p, 1 - p)). */
    heldOutGoodRate: number;
  };
  before: OracleRates;
  after: OracleRates;
  /** after - before, in percentage points. */
  delta: { motionGood: number; adherence: number };
  /** With `control`: the base DiT after the SFT term alone, judged on the same videos; delta as above. */
  control?: { method: 'sft'; after: OracleRates; delta: { motionGood: number; adherence: number } };
  curves: {
    pavrm: { step: number; loss: number; accuracy: number }[];
    prfl: { step: number; loss: number; reward: number; k: number; sigma: number }[];
  };
  /** Wall time per stage, seconds (of this process; a resumed stage counts only its own part). */
  seconds: Record<string, number>;
  /** The same prompts and seeds before and after, for the report. */
  samples: { prompt: string; seed: string; before: JudgedVideo; after: JudgedVideo }[];
}

export interface DemoHooks {
  /** A stage starts (total units of work). */
  phase(name: string, total: number): void;
  update(done: number, metrics?: Record<string, number>): void;
  log(line: string): void;
  metrics(record: Record<string, unknown>): void;
  signal?: AbortSignal;
}

/** How the demo uses the machine (not part of its settings: it changes the time, not the result). */
export interface DemoParallel {
  /**
   * Worker threads (1: everything in this process). With more, the videos are generated on them (the same
   * videos bit for bit), and the PAVRM and PRFL train data-parallel on them (the same training up to float
   * summation order).
   */
  workers: number;
}

/** Decoded videos of the report's samples, before and after. */
export interface DemoFrames {
  before: Video[];
  after: Video[];
}

/**
 * A stage's curve over every process of the run (metrics.jsonl, appended by each), one point per step;
 * a step redone after a resume keeps its last record. `fallback` when the run keeps no log.
 */
function curveFromLog<T extends { step: number }>(log: string, stage: string, fallback: T[]): T[] {
  if (!existsSync(log)) return fallback;
  const byStep = new Map<number, T>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let r: { stage?: string; step?: number; time?: string };
    try {
      r = JSON.parse(line);
    } catch {
      continue; // A line cut by a crash.
    }
    if (r.stage !== stage || typeof r.step !== 'number') continue;
    const { stage: _s, time: _t, ...point } = r;
    byStep.set(r.step, point as unknown as T);
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

async function decodeVideos(models: EmbeddedModels, latents: LatentVideo): Promise<Video[]> {
  const frames = models.vae.decode(latents);
  const data = await frames.data();
  const [b, f, h, w] = frames.shape;
  frames.dispose();
  const size = f * h * w * 3;
  return Array.from({ length: b }, (_, i) => ({
    frames: f,
    height: h,
    width: w,
    data: data.slice(i * size, (i + 1) * size) as Float32Array,
  }));
}

/** The held-out prompts and seeds, generated and judged with the demo's sampler (on worker threads when given). */
function judgeEval(
  models: EmbeddedModels,
  s: DemoSettings,
  prompts: readonly string[],
  evalSeed: string,
  hooks: DemoHooks,
  generator?: JudgedGenerator,
) {
  const request = {
    prompts,
    seed: evalSeed,
    numSteps: s.numSteps,
    guidanceScale: s.guidanceScale,
    onProgress: (d: number) => hooks.update(d),
  };
  return generator ? generator.generateJudged(request) : generateJudged(models, request);
}

/** Fine-tunes `models.dit` on the demo's budget (PRFL, or with `prfl` options another method of the loop). */
function fineTune(
  models: EmbeddedModels,
  s: DemoSettings,
  o: {
    reward?: Pavrm;
    prfl?: PrflTrainerOptions;
    checkpointDir: string;
    hooks: DemoHooks;
    onStep: (m: PrflStepMetrics) => void;
    workers: number;
  },
) {
  return finetuneWithPrfl({
    workers: o.workers,
    models,
    ...(o.reward === undefined ? {} : { reward: o.reward }),
    steps: s.prflSteps,
    batchSize: s.prflBatch,
    seed: s.seed,
    prfl: { ...o.prfl, lr: s.prflLr, numSteps: s.numSteps },
    checkpointDir: o.checkpointDir,
    checkpointEvery: 10,
    onStep: o.onStep,
    ...(o.hooks.signal === undefined ? {} : { signal: o.hooks.signal }),
  }).then((r) => {
    // Ctrl-C: the trainer stopped at a step with a checkpoint; no later stage may run on half a run.
    throwIfInterrupted(o.hooks.signal);
    return r;
  });
}

/** after - before, in percentage points. */
function deltaOf(before: OracleRates, after: OracleRates): { motionGood: number; adherence: number } {
  return {
    motionGood: 100 * (after.motionGood.rate - before.motionGood.rate),
    adherence: 100 * (after.adherence.rate - before.adherence.rate),
  };
}

/** Copies of a model's variables. */
function snapshot(model: { namedVariables(): ReadonlyMap<string, tf.Variable> }): Map<string, tf.Tensor> {
  return new Map([...model.namedVariables()].map(([k, v]) => [k, tf.clone(v)]));
}

function restore(
  model: { namedVariables(): ReadonlyMap<string, tf.Variable> },
  from: Map<string, tf.Tensor>,
): void {
  for (const [k, v] of model.namedVariables()) v.assign(from.get(k) as tf.Tensor);
}

/**
 * Stage 5: the base DiT (`base`, the caller's to dispose) fine-tuned with the SFT term alone, PRFL's
 * budget, then judged on the same prompts and seeds as PRFL. `models.dit` holds the PRFL weights again
 * afterwards.
 */
async function sftControl(
  models: EmbeddedModels,
  base: Map<string, tf.Tensor>,
  s: DemoSettings,
  prompts: readonly string[],
  evalSeed: string,
  checkpointDir: string,
  hooks: DemoHooks,
  clock: (name: string) => () => void,
  generator: JudgedGenerator | undefined,
  workers: number,
): Promise<OracleRates> {
  const tuned = snapshot(models.dit);
  try {
    restore(models.dit, base);
    let end = clock('control');
    hooks.phase('SFT control', s.prflSteps);
    await fineTune(models, s, {
      prfl: SFT_PRESET,
      checkpointDir,
      hooks,
      workers,
      onStep: (m) => {
        hooks.metrics({ stage: 'control', step: m.step, loss: m.loss });
        hooks.update(m.step, { loss: m.loss });
      },
    });
    end();
    end = clock('control after');
    hooks.phase('control after', prompts.length);
    const judged = await judgeEval(models, s, prompts, evalSeed, hooks, generator);
    tf.dispose([judged.latents, judged.text]);
    end();
    return oracleRates(judged.videos);
  } finally {
    restore(models.dit, tuned);
    tf.dispose([...tuned.values()]);
  }
}

/** Runs (or resumes) the demo in `runDir`; `models.dit` ends fine-tuned. */
export async function runDemo(
  models: EmbeddedModels,
  runDir: string,
  settings: DemoSettings,
  hooks: DemoHooks,
  parallel: DemoParallel = { workers: 1 },
): Promise<{ result: DemoResult; frames: DemoFrames }> {
  // Worker threads holding copies of the generator (the DiT follows the fine-tuning: published per call).
  const generator: GenerationWorkers | undefined =
    parallel.workers > 1 ? await startGenerationWorkers(models, { workers: parallel.workers }) : undefined;
  try {
    return await demoStages(models, runDir, settings, hooks, parallel, generator);
  } finally {
    await generator?.close();
  }
}

async function demoStages(
  models: EmbeddedModels,
  runDir: string,
  settings: DemoSettings,
  hooks: DemoHooks,
  parallel: DemoParallel,
  generator: GenerationWorkers | undefined,
): Promise<{ result: DemoResult; frames: DemoFrames }> {
  const reward = models.reward;
  if (reward !== undefined) disposePavrm(reward);
  delete models.reward;
  const seconds: Record<string, number> = {};
  const world = models.manifest.world;
  const s = settings;
  const file = (...p: string[]) => path.join(runDir, ...p);
  const clock = (name: string) => {
    const t = performance.now();
    return () => {
      seconds[name] = Math.round((performance.now() - t) / 100) / 10;
    };
  };

  // 1. The PAVRM on the base generator's own videos.
  const pavrmCurve: DemoResult['curves']['pavrm'] = [];
  let end = clock('reward');
  hooks.phase('reward videos', s.rewardVideos);
  let phase = 'generate';
  const trained = await trainReward({
    models,
    generations: s.rewardVideos,
    steps: s.rewardSteps,
    numSteps: s.numSteps,
    guidanceScale: s.guidanceScale,
    seed: s.seed,
    runDir: file('reward'),
    checkpointEvery: 50,
    workers: parallel.workers,
    ...(generator === undefined ? {} : { generator }),
    onProgress: (p) => {
      if (p.phase !== phase) {
        phase = p.phase;
        hooks.phase('train PAVRM', p.total);
      }
      if (p.phase === 'train' && p.loss !== undefined) {
        const point = { step: p.done, loss: p.loss, accuracy: p.accuracy ?? Number.NaN };
        pavrmCurve.push(point);
        hooks.metrics({ stage: 'reward', ...point });
        hooks.update(p.done, { loss: p.loss, accuracy: p.accuracy ?? Number.NaN });
      } else hooks.update(p.done);
    },
    ...(hooks.signal === undefined ? {} : { signal: hooks.signal }),
  });
  end();
  const pavrm: Pavrm = trained.reward;
  let base: Map<string, tf.Tensor> | undefined;
  try {
    // Ctrl-C during the PAVRM's training: it stopped with a checkpoint; nothing after it runs.
    throwIfInterrupted(hooks.signal);
    // 2. Before: held-out prompts and seeds, the base generator.
    const heldOut = worldPrompts(world, 'held-out').map(formatPrompt);
    const prompts = Array.from({ length: s.evalVideos }, (_, i) => heldOut[i % heldOut.length] as string);
    const evalSeed = `${s.seed}/demo-eval`;
    end = clock('before');
    hooks.phase('before', s.evalVideos);
    const before = await judgeEval(models, s, prompts, evalSeed, hooks, generator);
    const beforeFrames = await decodeVideos(
      models,
      tf.slice(before.latents, [0, 0, 0, 0, 0], [Math.min(s.samples, s.evalVideos), -1, -1, -1, -1]),
    );
    const labels = tf.tensor1d(
      before.videos.map((v) => v.motionGood),
      'float32',
    );
    const promptOfSeed = new Map(before.videos.map((v) => [v.seed, v.prompt]));
    const buckets = await evaluateBySigmaBucket(
      pavrm,
      {
        ids: before.videos.map((v) => v.seed),
        latents: before.latents,
        labels,
        conditioning: { text: before.text },
      },
      { seed: s.seed, groupOf: (id) => promptOfSeed.get(id) as string },
    );
    tf.dispose([before.latents, before.text, labels]);
    end();

    // 3. PRFL (the base weights are kept for the control).
    base = s.control ? snapshot(models.dit) : undefined;
    end = clock('prfl');
    hooks.phase('PRFL', s.prflSteps);
    const prflCurve: DemoResult['curves']['prfl'] = [];
    await fineTune(models, s, {
      reward: pavrm,
      checkpointDir: file('prfl'),
      hooks,
      workers: parallel.workers,
      onStep: (m) => {
        const point = { step: m.step, loss: m.loss, reward: m.reward.mean, k: m.k, sigma: m.sigmaNext };
        prflCurve.push(point);
        hooks.metrics({ stage: 'prfl', ...point });
        hooks.update(m.step, { loss: m.loss, reward: point.reward });
      },
    });
    end();

    // 4. After: the same prompts and seeds.
    end = clock('after');
    hooks.phase('after', s.evalVideos);
    const after = await judgeEval(models, s, prompts, evalSeed, hooks, generator);
    const afterFrames = await decodeVideos(
      models,
      tf.slice(after.latents, [0, 0, 0, 0, 0], [Math.min(s.samples, s.evalVideos), -1, -1, -1, -1]),
    );
    tf.dispose([after.latents, after.text]);
    end();

    const b = oracleRates(before.videos);
    const a = oracleRates(after.videos);
    const result: DemoResult = {
      settings: s,
      backend: tf.getBackend(),
      reward: {
        trainVideos: trained.videos.length,
        trainMotionGoodRate: trained.videos.filter((v) => v.motionGood).length / trained.videos.length,
        buckets: buckets.buckets.map((x) => ({
          low: x.bucket.low,
          high: x.bucket.high,
          accuracy: x.accuracy,
          rocAuc: x.rocAuc,
          withinPromptAuc: x.withinGroupAuc ?? Number.NaN,
          n: x.n,
        })),
        average: buckets.average.accuracy,
        averageRocAuc: buckets.average.rocAuc,
        averageWithinPromptAuc: buckets.average.withinGroupAuc ?? Number.NaN,
        heldOutGoodRate: b.motionGood.rate,
      },
      before: b,
      after: a,
      delta: deltaOf(b, a),
      curves: {
        pavrm: curveFromLog(file('metrics.jsonl'), 'reward', pavrmCurve),
        prfl: curveFromLog(file('metrics.jsonl'), 'prfl', prflCurve),
      },
      seconds,
      samples: beforeFrames.map((_, i) => ({
        prompt: prompts[i] as string,
        seed: `${evalSeed}-${i}`,
        before: before.videos[i] as JudgedVideo,
        after: after.videos[i] as JudgedVideo,
      })),
    };
    // The fine-tuned generator with the demo's PAVRM, loadable with --weights (the PAVRM keeps the base
    // DiT's embeddings it was trained with).
    await saveEmbedded(
      { vae: models.vae, textEncoder: models.textEncoder, dit: models.dit, reward: pavrm },
      file(RUN_WEIGHTS_DIR),
      {
        world,
        recipe: { ...models.manifest.recipe, demo: { settings: s } },
        rewardBlocks: trained.reward.config.blocks,
      },
      { rewardBackbone: 'all' },
    );
    if (base !== undefined) {
      const c = await sftControl(
        models,
        base,
        s,
        prompts,
        evalSeed,
        file('control'),
        hooks,
        clock,
        generator,
        parallel.workers,
      );
      result.control = { method: 'sft', after: c, delta: deltaOf(b, c) };
    }
    await writeTextAtomic(file('result.json'), `${JSON.stringify(result, null, 2)}\n`);
    return { result, frames: { before: beforeFrames, after: afterFrames } };
  } finally {
    disposePavrm(pavrm);
    if (base !== undefined) tf.dispose([...base.values()]);
  }
}
