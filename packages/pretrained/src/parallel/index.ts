/**
 * @prfl/pretrained/parallel (Node only): `generateJudged` over worker threads. Each worker holds a copy of
 * the text encoder, VAE and DiT; the prompts are cut into the batches `generateJudged` would make, each
 * batch goes to the next free worker, and the results come back in order: the same videos, labels and
 * latents, bit for bit, as one process makes on the same backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { InvalidArgumentError, type LatentVideo, unpackTensor } from '@prfl/tensor';
import { ReplicaPool } from '@prfl/tensor/parallel';
import type { GenerateJudgedOptions, JudgedGenerations } from '../generate-judged.js';
import { type GenerateBatchResult, generatorReplicaRecipe } from './replica.js';

export interface GenerationWorkersOptions {
  /** Worker threads, 1-16 (on 2 cores: 2). */
  workers: number;
  /** The workers' backend, 'cpu' or 'wasm' (default the main thread's when it is one of them, else wasm). */
  backend?: 'cpu' | 'wasm';
}

/** Worker threads holding copies of a generator; `close()` them when done. */
export interface GenerationWorkers {
  readonly size: number;
  /**
   * `generateJudged` on the workers, with the DiT's current weights (published at each call). The
   * `model` option is not available: the workers hold `models.dit`.
   */
  generateJudged(options: Omit<GenerateJudgedOptions, 'model'>): Promise<JudgedGenerations>;
  close(): Promise<void>;
}

const BATCH_TASK = { module: '@prfl/pretrained', export: 'generateJudgedBatch' };

/** Starts `workers` threads with copies of `models` (text encoder and VAE fixed; the DiT kept in step). */
export async function startGenerationWorkers(
  models: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE },
  options: GenerationWorkersOptions,
): Promise<GenerationWorkers> {
  const pool = await ReplicaPool.start({
    workers: options?.workers,
    recipe: await generatorReplicaRecipe(models),
    weights: models.dit.namedVariables() as ReadonlyMap<string, tf.Tensor>,
    ...(options?.backend === undefined ? {} : { backend: options.backend }),
  });
  return {
    size: pool.size,
    async generateJudged(o) {
      if ((o as GenerateJudgedOptions).model !== undefined) {
        throw new InvalidArgumentError('GenerationWorkers.generateJudged: the model option is not available');
      }
      const { prompts } = o;
      if (!Array.isArray(prompts) || prompts.length === 0 || prompts.some((p) => typeof p !== 'string')) {
        throw new InvalidArgumentError('generateJudged: prompts must be a non-empty array of strings');
      }
      const batchSize = o.batchSize ?? 8;
      if (!Number.isInteger(batchSize) || batchSize < 1) {
        throw new InvalidArgumentError(
          `generateJudged: batchSize must be a positive integer, got ${String(batchSize)}`,
        );
      }
      const { onProgress, batchSize: _b, ...rest } = o;
      const first = rest.firstIndex ?? 0;
      if (!Number.isSafeInteger(first) || first < 0) {
        throw new InvalidArgumentError(
          `generateJudged: firstIndex must be a non-negative integer, got ${String(first)}`,
        );
      }
      const batches = [];
      for (let i = 0; i < prompts.length; i += batchSize) {
        batches.push({ ...rest, prompts: prompts.slice(i, i + batchSize), firstIndex: first + i });
      }
      pool.publish();
      let done = 0;
      const results = await pool.map<GenerateBatchResult>(BATCH_TASK, batches, (_i, r) => {
        done += r.videos.length;
        onProgress?.(done, prompts.length);
      });
      const parts = (k: 'latents' | 'text') => results.map((r) => unpackTensor(r[k]));
      const latents = parts('latents');
      const text = parts('text');
      try {
        return {
          latents: tf.concat(latents, 0) as LatentVideo,
          text: tf.concat(text, 0) as tf.Tensor3D,
          videos: results.flatMap((r) => r.videos),
        };
      } finally {
        tf.dispose([...latents, ...text]);
      }
    },
    close: () => pool.close(),
  };
}
