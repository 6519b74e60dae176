/**
 * Stage 3 of the recipe: the PAVRM, trained on the base generator's own videos (docs/method.md §4). The
 * generator makes videos for the training prompts, the oracle labels their motion (good / bad), and a
 * PAVRM on a copy of the DiT's first blocks learns the label from the noisy latent at every noise level
 * (BCE, sigma drawn per sample). Generations are cached in the run folder; training checkpoints there
 * and resumes exactly.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt } from '@prfl/datasets';
import type { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import {
  type Aggregation,
  CHECKPOINT_FILE,
  Pavrm,
  PavrmTrainer,
  type SigmaSampler,
  tensorPairwiseSource,
  tensorPointwiseSource,
} from '@prfl/reward';
import {
  InvalidArgumentError,
  type LatentVideo,
  loadTensors,
  openSafetensors,
  saveSafetensors,
  writeFileAtomic,
} from '@prfl/tensor';
import {
  type GenerateJudgedOptions,
  generateJudged,
  type JudgedGenerations,
  type JudgedVideo,
} from '../generate-judged.js';
import { startPavrmWorkers, type PavrmWorkers } from '@prfl/reward/parallel';
import { EMBEDDED_WORLD, type EmbeddedWorld, worldPrompts } from '../world.js';

export interface RewardProgress {
  phase: 'generate' | 'train';
  done: number;
  total: number;
  loss?: number;
  accuracy?: number;
  elapsedMs: number;
}

export interface TrainRewardOptions {
  models: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE };
  world?: EmbeddedWorld;
  /** Seed of the generations, the head's initial weights and the sigmas (default 1). */
  seed?: number;
  /** Videos generated for training (default 768: 16 per training prompt, repeated). */
  generations?: number;
  /** Guidance scale and sampling steps of the generations (defaults: generateJudged's). */
  guidanceScale?: number;
  numSteps?: number;
  /** DiT blocks the reward keeps (default 2 of the tiny DiT's 4). */
  blocks?: number;
  aggregation?: Aggregation;
  /**
   * 'bce' (default): each video against its label. 'bradley-terry': pairs of a good and a bad video of
   * the same prompt, the good one preferred (the paper's pairwise alternative).
   */
  loss?: 'bce' | 'bradley-terry';
  /**
   * What BCE learns from each video: 'label' (default), the oracle's 0/1 motion label, as an annotator
   * gives it; or 'score', the oracle's motion score in (0, 1) (0.5 at its decision threshold) as a soft
   * label: near-threshold videos then count as the near-ties they are. Needs `motionScore` on every video.
   */
  target?: 'label' | 'score';
  /**
   * How training noise levels are drawn (default the reference's: a uniform index on the shift-5 grid,
   * half the draws above sigma 0.83). See @prfl/reward's SigmaSampler.
   */
  sigmaSampler?: SigmaSampler;
  /** Hidden widths of the MLP head (default [64, 32]). */
  hidden?: readonly number[];
  /** Training steps (default 1500) and batch size (default 16). */
  steps?: number;
  batchSize?: number;
  lrHead?: number;
  lrBackbone?: number;
  /** Folder of the generations cache (and, by default, of the checkpoints: `<runDir>/pavrm`). */
  runDir?: string;
  /**
   * What the cached generations must have been made with, besides their prompts and seeds (e.g. the
   * generator's training step): a cache with another key is made again. Default ''.
   */
  cacheKey?: string;
  /**
   * Labelled videos to train on instead of generating them (e.g. read from the reference's data layout):
   * `generations` and `seed`'s generation settings are then unused, and trainReward takes the tensors
   * over (it disposes them).
   */
  data?: LabelledLatents;
  /** Checkpoints elsewhere than `<runDir>/pavrm` (ablations share one run's generations). */
  checkpointDir?: string;
  checkpointEvery?: number;
  onProgress?: (p: RewardProgress) => void;
  signal?: AbortSignal;
  /**
   * Data-parallel PAVRM training on this many worker threads (Node; default 1: this process). Each step's
   * batch is split over replicas and their gradients summed: the same training up to float summation order.
   */
  workers?: number;
  /**
   * Where the reward videos are generated: default `generateJudged` in this process; pass GenerationWorkers
   * (@prfl/pretrained/parallel) to spread them over threads (the same videos, bit for bit).
   */
  generator?: JudgedGenerator;
}

/** Makes judged generations: `generateJudged` here, or GenerationWorkers on threads. */
export interface JudgedGenerator {
  generateJudged(options: Omit<GenerateJudgedOptions, 'model'>): Promise<JudgedGenerations>;
}

/** What the reward learns from each video: its prompt and the oracle's (or an annotator's) motion label. */
export type LabelledVideo = Pick<JudgedVideo, 'prompt' | 'motionGood'> & { motionScore?: number };

/** Labelled latents to train on: normalised latents [N, F', H', W', C], text [N, L, D], one label each. */
export interface LabelledLatents {
  latents: LatentVideo;
  text: tf.Tensor3D;
  videos: readonly LabelledVideo[];
}

export interface TrainedReward {
  reward: Pavrm;
  /** The labelled videos it was trained on (judged generations unless `data` was given). */
  videos: readonly LabelledVideo[];
  step: number;
}

/** The labelled generations in a run folder: latents [N, F', H', W', C] and text [N, L, D] (metadata cacheKey). */
export const GENERATIONS_FILE = 'generations.safetensors';
/** Beside it: one JudgedVideo per generation, in the same order. */
export const VIDEOS_FILE = 'generations.json';

/** Generates, labels and trains; resumes from `runDir` when it holds generations or a checkpoint. */
export async function trainReward(options: TrainRewardOptions): Promise<TrainedReward> {
  const seed = options.seed ?? 1;
  const count = options.generations ?? 768;
  const steps = options.steps ?? 1500;
  const batchSize = options.batchSize ?? 16;
  const workerCount = options.workers ?? 1;
  for (const [name, v] of [
    ['generations', count],
    ['steps', steps],
    ['batchSize', batchSize],
    ['workers', workerCount],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new InvalidArgumentError(`trainReward: ${name} must be a positive integer, got ${String(v)}`);
    }
  }
  const loss = options.loss ?? 'bce';
  if (loss !== 'bce' && loss !== 'bradley-terry') {
    throw new InvalidArgumentError(
      `trainReward: loss must be 'bce' or 'bradley-terry', got ${JSON.stringify(loss)}`,
    );
  }
  const target = options.target ?? 'label';
  if (target !== 'label' && target !== 'score') {
    throw new InvalidArgumentError(
      `trainReward: target must be 'label' or 'score', got ${JSON.stringify(target)}`,
    );
  }
  if (target === 'score' && loss !== 'bce') {
    throw new InvalidArgumentError(
      "trainReward: target 'score' is a soft label for loss 'bce', not for 'bradley-terry'",
    );
  }
  const start = performance.now();
  const progress = (p: Omit<RewardProgress, 'elapsedMs'>) =>
    options.onProgress?.({ ...p, elapsedMs: performance.now() - start });

  const data =
    options.data ??
    (await rewardGenerations(options, (done) => progress({ phase: 'generate', done, total: count })));
  // The batches first: data they refuse (no pairs, a missing score) is refused before any model is built.
  let made: ReturnType<typeof pointwise> | ReturnType<typeof pairwise>;
  try {
    made = loss === 'bce' ? pointwise(data, target) : pairwise(data);
  } catch (e) {
    tf.dispose([data.latents, data.text]);
    throw e;
  }
  const { source } = made;
  const reward = new Pavrm(options.models.dit.truncate(options.blocks ?? 2), {
    aggregation: options.aggregation ?? 'query-attention',
    hidden: options.hidden ?? [64, 32],
    seed: `${seed}/pavrm`,
  });
  let workers: PavrmWorkers | undefined;
  if (workerCount > 1) {
    try {
      workers = await startPavrmWorkers(reward, { workers: workerCount });
    } catch (e) {
      reward.dispose();
      tf.dispose([data.latents, data.text, ...made.owned]);
      throw e;
    }
  }
  const trainerOptions = {
    ...(workers === undefined ? {} : { workers }),
    lrHead: options.lrHead ?? 1e-3,
    lrBackbone: options.lrBackbone ?? 1e-4,
    ...(options.sigmaSampler === undefined ? {} : { sigmaSampler: options.sigmaSampler }),
    seed,
    onStep: (m: { step: number; loss: number; accuracy: number }) =>
      progress({ phase: 'train', done: m.step, total: steps, loss: m.loss, accuracy: m.accuracy }),
  };
  const ckptDir =
    options.checkpointDir ?? (options.runDir === undefined ? undefined : path.join(options.runDir, 'pavrm'));
  let trainer: PavrmTrainer;
  try {
    if (ckptDir !== undefined) await setAsideStaleCheckpoint(ckptDir, dataKey(options, count, seed));
    trainer =
      ckptDir !== undefined && existsSync(path.join(ckptDir, CHECKPOINT_FILE))
        ? await PavrmTrainer.resume(ckptDir, reward, trainerOptions)
        : new PavrmTrainer(reward, trainerOptions);
  } catch (e) {
    // A damaged checkpoint or a refused option: the worker threads and their replicas go too.
    await workers?.close();
    throw e;
  }
  const owned: tf.Tensor[] = [...made.owned];
  try {
    // Fewer videos (or pairs) than a batch: the batch is all of them, not none (dropLast would drop it).
    const batch = Math.min(batchSize, source.size);
    const result = await trainer.fit(source, {
      // Whole batches only (dropLast): enough epochs for `steps` of them.
      epochs: Math.ceil(steps / Math.floor(source.size / batch)) + 1,
      batchSize: batch,
      dropLast: true,
      maxSteps: steps,
      ...(ckptDir === undefined
        ? {}
        : { checkpointDir: ckptDir, checkpointEvery: options.checkpointEvery ?? 250 }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { reward, videos: data.videos, step: result.step };
  } finally {
    try {
      trainer.dispose();
    } finally {
      await workers?.close();
      tf.dispose([data.latents, data.text, ...owned]);
    }
  }
}

/** Beside a PAVRM checkpoint: which data it was trained on (the generations' cache key, count and seed). */
const DATA_KEY_FILE = 'data-key.json';

function dataKey(options: TrainRewardOptions, count: number, seed: number): string {
  return JSON.stringify({
    data: options.data === undefined ? 'generated' : 'given',
    cacheKey: options.cacheKey ?? '',
    generations: count,
    seed,
    // Only when not the default, so that the keys of earlier runs still match.
    ...(options.target === 'score' ? { target: 'score' } : {}),
    ...(options.sigmaSampler === undefined ? {} : { sigmaSampler: options.sigmaSampler }),
  });
}

/**
 * A checkpoint trained on other data (a generator trained further in the same run folder makes new
 * generations) would resume as if it were this run's: it is moved aside to `<dir>.stale-<n>` (nothing is
 * deleted) and training starts afresh. The key is written when training starts.
 */
async function setAsideStaleCheckpoint(dir: string, key: string): Promise<void> {
  const keyFile = path.join(dir, DATA_KEY_FILE);
  if (existsSync(path.join(dir, CHECKPOINT_FILE)) && existsSync(keyFile)) {
    if ((await readFile(keyFile, 'utf8')) !== key) {
      let n = 1;
      while (existsSync(`${dir}.stale-${n}`)) n++;
      await rename(dir, `${dir}.stale-${n}`);
    }
  }
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(keyFile, async (write) => {
    await write(new TextEncoder().encode(key));
  });
}

/**
 * The labelled generations `trainReward` trains on when no `data` is given: `generations` videos of the
 * training prompts (cycled), seeds `${seed}/reward-generations-${i}`, judged by the oracle; read from
 * `runDir` when cached there for the same prompts, seeds and `cacheKey`, else made and cached. The caller
 * disposes the tensors.
 */
export async function rewardGenerations(
  options: Pick<
    TrainRewardOptions,
    | 'models'
    | 'world'
    | 'seed'
    | 'generations'
    | 'guidanceScale'
    | 'numSteps'
    | 'runDir'
    | 'cacheKey'
    | 'generator'
  >,
  onProgress: (done: number) => void = () => {},
): Promise<JudgedGenerations> {
  const world = options.world ?? EMBEDDED_WORLD;
  const count = options.generations ?? 768;
  const prompts = worldPrompts(world, 'train').map(formatPrompt);
  const wanted = Array.from({ length: count }, (_, i) => prompts[i % prompts.length] as string);
  return cachedGenerations(options, wanted, `${options.seed ?? 1}/reward-generations`, onProgress);
}

/**
 * Every video against its motion label (or its motion score as a soft label); `owned` are the tensors made
 * here, which the source reads until the end.
 */
function pointwise(data: LabelledLatents, target: 'label' | 'score') {
  const values = data.videos.map((v, i) => {
    if (target === 'label') return v.motionGood;
    const s = v.motionScore;
    if (typeof s !== 'number' || !(s >= 0 && s <= 1)) {
      throw new InvalidArgumentError(
        `trainReward: target 'score' needs a motion score in [0, 1] on every video; video ${i} (${v.prompt}) has ${String(s)}`,
      );
    }
    return s;
  });
  const labels = tf.tensor1d(values, 'float32');
  return {
    source: tensorPointwiseSource({ latents: data.latents, labels, conditioning: { text: data.text } }),
    owned: [labels],
  };
}

/** Indices of (good, bad) pairs of the same prompt, as many per prompt as the rarer label has, in order. */
export function preferencePairs(videos: readonly Pick<JudgedVideo, 'prompt' | 'motionGood'>[]): {
  win: number[];
  lose: number[];
} {
  const byPrompt = new Map<string, { good: number[]; bad: number[] }>();
  videos.forEach((v, i) => {
    const e = byPrompt.get(v.prompt) ?? { good: [], bad: [] };
    (v.motionGood ? e.good : e.bad).push(i);
    byPrompt.set(v.prompt, e);
  });
  const win: number[] = [];
  const lose: number[] = [];
  for (const { good, bad } of byPrompt.values()) {
    for (let i = 0; i < Math.min(good.length, bad.length); i++) {
      win.push(good[i] as number);
      lose.push(bad[i] as number);
    }
  }
  return { win, lose };
}

function pairwise(data: LabelledLatents) {
  const { win, lose } = preferencePairs(data.videos);
  if (win.length === 0) {
    throw new InvalidArgumentError(
      "trainReward: loss 'bradley-terry' needs a good and a bad video of one prompt at least; the generations have none",
    );
  }
  const w = tf.tensor1d(win, 'int32');
  const l = tf.tensor1d(lose, 'int32');
  const made = {
    win: tf.gather(data.latents, w) as LatentVideo,
    lose: tf.gather(data.latents, l) as LatentVideo,
    conditioning: { text: tf.gather(data.text, w) as tf.Tensor3D },
  };
  tf.dispose([w, l]);
  return { source: tensorPairwiseSource(made), owned: [made.win, made.lose, made.conditioning.text] };
}

/** The labelled generations: read from the run folder when they are there for the same prompts and seed. */
async function cachedGenerations(
  options: Pick<
    TrainRewardOptions,
    'models' | 'guidanceScale' | 'numSteps' | 'runDir' | 'cacheKey' | 'generator'
  >,
  prompts: readonly string[],
  seed: string,
  onProgress: (done: number) => void,
): Promise<JudgedGenerations> {
  const dir = options.runDir;
  const tensorsFile = dir === undefined ? undefined : path.join(dir, GENERATIONS_FILE);
  const videosFile = dir === undefined ? undefined : path.join(dir, VIDEOS_FILE);
  if (
    tensorsFile !== undefined &&
    videosFile !== undefined &&
    existsSync(tensorsFile) &&
    existsSync(videosFile)
  ) {
    const videos = JSON.parse(await readFile(videosFile, 'utf8')) as JudgedVideo[];
    if (
      videos.length === prompts.length &&
      videos.every((v, i) => v.prompt === prompts[i] && v.seed === `${seed}-${i}`)
    ) {
      const reader = await openSafetensors(tensorsFile);
      try {
        if ((reader.metadata?.cacheKey ?? '') === (options.cacheKey ?? '')) {
          const t = await loadTensors(reader, ['latents', 'text']);
          onProgress(prompts.length);
          return { latents: t.latents as LatentVideo, text: t.text as tf.Tensor3D, videos };
        }
      } finally {
        await reader.close();
      }
    }
  }
  const request = {
    prompts,
    seed,
    ...(options.guidanceScale === undefined ? {} : { guidanceScale: options.guidanceScale }),
    ...(options.numSteps === undefined ? {} : { numSteps: options.numSteps }),
    onProgress,
  };
  const made = options.generator
    ? await options.generator.generateJudged(request)
    : await generateJudged(options.models, request);
  if (dir !== undefined && tensorsFile !== undefined && videosFile !== undefined) {
    await mkdir(dir, { recursive: true });
    await saveSafetensors(
      tensorsFile,
      { latents: made.latents, text: made.text },
      { metadata: { cacheKey: options.cacheKey ?? '' } },
    );
    await writeFileAtomic(videosFile, async (write) => {
      await write(new TextEncoder().encode(`${JSON.stringify(made.videos, null, 1)}\n`));
    });
  }
  return made;
}
