/**
 * PRFL on the embedded generator (docs/method.md §5): the DiT is fine-tuned against a frozen latent
 * reward by back-propagating the reward of x_{k+1} through one denoising step at a random k, with the SFT
 * term on real clips of good motion. The text encoder stays frozen: prompts are encoded once.
 *
 * Works in Node and in browsers (no file system unless `checkpointDir` is given, in Node).
 */
import * as tf from '@tensorflow/tfjs-core';
import { renderClips } from './clips.js';
import { formatPrompt } from '@prfl/datasets';
import type { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import {
  CHECKPOINT_FILE,
  type LatentDecoder,
  PrflTrainer,
  type PrflStepMetrics,
  type PrflTrainerOptions,
  tensorVideoSource,
} from '@prfl/refl';
import type { PrflWorkers } from '@prfl/refl/parallel';
import { InvalidArgumentError, type LatentRewardModel, type LatentVideo, nodeImport } from '@prfl/tensor';
import { EMBEDDED_WORLD, type EmbeddedWorld, sampleWorldClips } from './world.js';

export interface FinetuneOptions {
  models: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE };
  /**
   * The frozen reward (the embedded PAVRM, one trained on fresh generations, or a pixel reward for RGB
   * ReFL); not needed by SFT alone (`prfl: SFT_PRESET`).
   */
  reward?: LatentRewardModel;
  world?: EmbeddedWorld;
  /** Good-motion training clips for the SFT term and the prompts of the rollouts (default 128). */
  clips?: number;
  /**
   * Fraction of those clips drawn with a motion defect (default 0: PRFL's SFT term and SFT learn from good
   * clips; reward-weighted regression weights a mix by the reward).
   */
  clipMotionDefectRate?: number;
  /**
   * Training latents [N, F', H', W', C] and their text embeddings [N, L, D] instead of rendered clips
   * (e.g. read from the reference's data layout); finetuneWithPrfl takes them over (disposes them).
   */
  data?: { latents: LatentVideo; text: tf.Tensor3D };
  /** A decoder for the pixel readout of RGB ReFL (`prfl: RGB_REFL_PRESET` with a pixel reward). */
  decoder?: LatentDecoder;
  /** PRFL micro-steps (default 60) and videos per micro-step (default 4). */
  steps?: number;
  batchSize?: number;
  seed?: number;
  /**
   * @prfl/refl options over this function's defaults: lr 1e-4 (the paper's 5e-6 is for a 14B model
   * fine-tuned for days; a 0.26M-parameter DiT moves in tens of steps at 1e-4), accumulation 1,
   * 20 sampling steps (the embedded sampler's), everything else the paper's.
   */
  prfl?: PrflTrainerOptions;
  /** Node: checkpoint here every `checkpointEvery` steps and resume from it. */
  checkpointDir?: string;
  checkpointEvery?: number;
  onStep?: (m: PrflStepMetrics) => void;
  signal?: AbortSignal;
  /**
   * Data-parallel training on this many worker threads (Node; default 1: this process). Each micro-step's
   * videos are split over replicas of the DiT and the reward (@prfl/refl/parallel): the same training up to
   * float summation order. PRFL's latent readout, SFT and reward-weighted regression; RGB ReFL's pixel
   * readout trains in one process.
   */
  workers?: number;
}

export interface FinetuneResult {
  step: number;
  metrics: PrflStepMetrics[];
}

/**
 * Encodes clips of the training prompts (good ones unless `motionDefectRate` > 0): latents
 * [N, F', H', W', C] and their text embeddings.
 */
export function goodClipData(
  models: { textEncoder: TransformerTextEncoder; vae: WanVAE },
  world: EmbeddedWorld,
  count: number,
  seed: string,
  motionDefectRate = 0,
): { latents: LatentVideo; text: tf.Tensor3D } {
  const specs = sampleWorldClips(world, { side: 'train', count, seed, motionDefectRate });
  const latents: tf.Tensor[] = [];
  const texts: tf.Tensor[] = [];
  for (let i = 0; i < specs.length; i += 8) {
    const chunk = specs.slice(i, i + 8);
    const video = renderClips(chunk);
    latents.push(models.vae.encode(video));
    video.dispose();
    const { text, mask } = models.textEncoder.encode(chunk.map((s) => formatPrompt(s.said)));
    mask.dispose();
    texts.push(text);
  }
  const out = { latents: tf.concat(latents, 0) as LatentVideo, text: tf.concat(texts, 0) as tf.Tensor3D };
  tf.dispose([...latents, ...texts]);
  return out;
}

/** Fine-tunes `models.dit` in place with PRFL; resumes from `checkpointDir` when it holds a checkpoint. */
export async function finetuneWithPrfl(options: FinetuneOptions): Promise<FinetuneResult> {
  const { models, reward } = options;
  const steps = options.steps ?? 60;
  const batchSize = options.batchSize ?? 4;
  const clips = options.clips ?? 128;
  const workerCount = options.workers ?? 1;
  for (const [name, v] of [
    ['steps', steps],
    ['batchSize', batchSize],
    ['clips', clips],
    ['workers', workerCount],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new InvalidArgumentError(
        `finetuneWithPrfl: ${name} must be a positive integer, got ${String(v)}`,
      );
    }
  }
  const seed = options.seed ?? 1;
  const data =
    options.data ??
    goodClipData(
      models,
      options.world ?? EMBEDDED_WORLD,
      clips,
      `${seed}/finetune-clips`,
      options.clipMotionDefectRate ?? 0,
    );
  if (data.latents.shape[0] < batchSize) {
    tf.dispose([data.latents, data.text]);
    throw new InvalidArgumentError(
      `finetuneWithPrfl: ${data.latents.shape[0]} training clips are fewer than one batch of ${batchSize}`,
    );
  }
  const empty = models.textEncoder.encode(['']);
  empty.mask.dispose();
  for (const v of models.dit.namedVariables().values()) v.trainable = true;
  const metrics: PrflStepMetrics[] = [];
  const trainerOptions: PrflTrainerOptions = {
    lr: 1e-4,
    accumulationSteps: 1,
    numSteps: 20,
    seed,
    measureMemory: false,
    ...options.prfl,
    onStep: (m, position) => {
      metrics.push(m);
      options.onStep?.(m);
      options.prfl?.onStep?.(m, position);
    },
  };
  const components = {
    generator: models.dit,
    ...(reward === undefined ? {} : { reward }),
    nullConditioning: { text: empty.text },
    ...(options.decoder === undefined ? {} : { decoder: options.decoder }),
  };
  let trainer: PrflTrainer | undefined;
  let workers: PrflWorkers | undefined;
  try {
    if (workerCount > 1) {
      // Node only, and loaded only here, so that browser bundles of this package never see worker_threads.
      const parallel = await nodeImport<typeof import('@prfl/refl/parallel')>('@prfl/refl/parallel');
      workers = await parallel.startPrflWorkers(components, { workers: workerCount });
      trainerOptions.workers = workers;
    }
    trainer =
      options.checkpointDir !== undefined && (await hasCheckpoint(options.checkpointDir))
        ? await PrflTrainer.resume(options.checkpointDir, components, trainerOptions)
        : new PrflTrainer(components, trainerOptions);
    const result = await trainer.fit(
      tensorVideoSource({ latents: data.latents, conditioning: { text: data.text } }),
      {
        // Whole batches only (dropLast): floor(clips / batchSize) micro-steps per epoch.
        epochs: Math.ceil(steps / Math.floor(data.latents.shape[0] / batchSize)) + 1,
        batchSize,
        dropLast: true,
        maxSteps: steps,
        ...(options.checkpointDir === undefined
          ? {}
          : { checkpointDir: options.checkpointDir, checkpointEvery: options.checkpointEvery ?? 20 }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
    );
    return { step: result.step, metrics };
  } finally {
    try {
      trainer?.dispose();
    } finally {
      await workers?.close();
      tf.dispose([data.latents, data.text, empty.text]);
    }
  }
}

/** Whether `dir` holds a checkpoint.json (Node only); a damaged one is then refused by the resume, not skipped. */
async function hasCheckpoint(dir: string): Promise<boolean> {
  const fs = await nodeImport<typeof import('node:fs')>('node:fs');
  const path = await nodeImport<typeof import('node:path')>('node:path');
  return fs.existsSync(path.join(dir, CHECKPOINT_FILE));
}
