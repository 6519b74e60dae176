/**
 * The RGB ReFL baseline's reward (docs/method.md §6): a small 3-D convolutional classifier on decoded
 * frames, trained on the same labelled generations as the PAVRM, with the same BCE step, on clean
 * frames (sigma 0: a pixel reward judges finished videos, which is why RGB ReFL decodes x0 first).
 * The latents are decoded once, in chunks, and kept as frames; checkpoints resume exactly.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { WanVAE } from '@prfl/models';
import {
  binaryMetrics,
  CHECKPOINT_FILE,
  type BinaryMetrics,
  PavrmTrainer,
  PixelVideoReward,
  type PixelVideoRewardConfig,
  tensorPointwiseSource,
} from '@prfl/reward';
import { InvalidArgumentError, type LatentVideo, timestep } from '@prfl/tensor';
import type { LabelledLatents } from './train-reward.js';

export interface TrainPixelRewardOptions {
  vae: WanVAE;
  data: LabelledLatents;
  /** 'all' frames (default) or the 'first' one: what RGB ReFL will decode (its decodeFrames). */
  frames?: 'all' | 'first';
  config?: Partial<PixelVideoRewardConfig>;
  /** Training steps (default 600), batch size (default 16), learning rate (default 1e-3). */
  steps?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  onProgress?: (p: {
    phase: 'decode' | 'train';
    done: number;
    total: number;
    loss?: number;
    accuracy?: number;
  }) => void;
  signal?: AbortSignal;
}

export interface TrainedPixelReward {
  reward: PixelVideoReward;
  step: number;
}

/** Decodes normalised latents to frames [N, F, H, W, 3] in [-1, 1], eight at a time (all or the first frame). */
export function decodeFrames(
  vae: WanVAE,
  latents: LatentVideo,
  frames: 'all' | 'first',
  onProgress?: (done: number) => void,
): tf.Tensor5D {
  const n = latents.shape[0];
  const parts: tf.Tensor5D[] = [];
  for (let i = 0; i < n; i += 8) {
    const chunk = tf.slice(latents, [i, 0, 0, 0, 0], [Math.min(8, n - i), -1, -1, -1, -1]) as LatentVideo;
    const video = vae.decode(chunk);
    chunk.dispose();
    if (frames === 'first') {
      parts.push(tf.slice(video, [0, 0, 0, 0, 0], [-1, 1, -1, -1, -1]) as tf.Tensor5D);
      video.dispose();
    } else parts.push(video);
    onProgress?.(Math.min(n, i + 8));
  }
  const out = tf.concat(parts, 0) as tf.Tensor5D;
  tf.dispose(parts);
  return out;
}

/** Trains a pixel reward on decoded frames of labelled latents; resumes from `checkpointDir`. */
export async function trainPixelReward(options: TrainPixelRewardOptions): Promise<TrainedPixelReward> {
  const steps = options.steps ?? 600;
  const batchSize = options.batchSize ?? 16;
  for (const [name, v] of [
    ['steps', steps],
    ['batchSize', batchSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new InvalidArgumentError(
        `trainPixelReward: ${name} must be a positive integer, got ${String(v)}`,
      );
    }
  }
  const n = options.data.videos.length;
  if (options.data.latents.shape[0] !== n) {
    throw new InvalidArgumentError(
      `trainPixelReward: ${options.data.latents.shape[0]} latents but ${n} labelled videos`,
    );
  }
  const seed = options.seed ?? 1;
  const frames = decodeFrames(options.vae, options.data.latents, options.frames ?? 'all', (done) =>
    options.onProgress?.({ phase: 'decode', done, total: n }),
  );
  const labels = tf.tensor1d(
    options.data.videos.map((v) => v.motionGood),
    'float32',
  );
  const reward = new PixelVideoReward({ ...options.config }, { seed: `${seed}/pixel-reward` });
  const trainerOptions = {
    lrHead: options.lr ?? 1e-3,
    lrBackbone: options.lr ?? 1e-3,
    seed,
    sigmaSampler: { kind: 'fixed', sigma: 0 } as const,
    onStep: (m: { step: number; loss: number; accuracy: number }) =>
      options.onProgress?.({
        phase: 'train',
        done: m.step,
        total: steps,
        loss: m.loss,
        accuracy: m.accuracy,
      }),
  };
  const dir = options.checkpointDir;
  let trainer: PavrmTrainer | undefined;
  try {
    trainer =
      dir !== undefined && existsSync(path.join(dir, CHECKPOINT_FILE))
        ? await PavrmTrainer.resume(dir, reward, trainerOptions)
        : new PavrmTrainer(reward, trainerOptions);
    const source = tensorPointwiseSource({
      latents: frames as unknown as LatentVideo,
      labels,
      conditioning: { text: options.data.text },
    });
    const batch = Math.min(batchSize, n);
    const result = await trainer.fit(source, {
      // Whole batches only (dropLast): floor(n / batch) steps per epoch.
      epochs: Math.ceil(steps / Math.floor(n / batch)) + 1,
      batchSize: batch,
      dropLast: true,
      maxSteps: steps,
      ...(dir === undefined ? {} : { checkpointDir: dir, checkpointEvery: options.checkpointEvery ?? 100 }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { reward, step: result.step };
  } catch (e) {
    reward.dispose();
    throw e;
  } finally {
    trainer?.dispose();
    tf.dispose([frames, labels]);
  }
}

/** Accuracy, ROC-AUC and the rest of a pixel reward on clean decoded frames of labelled latents. */
export async function evaluatePixelReward(
  reward: PixelVideoReward,
  vae: WanVAE,
  data: LabelledLatents,
  frames: 'all' | 'first' = 'all',
): Promise<BinaryMetrics> {
  const n = data.videos.length;
  const probabilities: number[] = [];
  for (let i = 0; i < n; i += 8) {
    const m = Math.min(8, n - i);
    const chunk = tf.slice(data.latents, [i, 0, 0, 0, 0], [m, -1, -1, -1, -1]) as LatentVideo;
    const decoded = decodeFrames(vae, chunk, frames);
    chunk.dispose();
    const text = tf.slice(data.text, [i, 0, 0], [m, -1, -1]) as tf.Tensor3D;
    const p = reward.probability(
      decoded as unknown as LatentVideo,
      Array.from({ length: m }, () => timestep(0)),
      { text },
    );
    probabilities.push(...(await p.data()));
    tf.dispose([decoded, text, p]);
  }
  return binaryMetrics(
    probabilities,
    data.videos.map((v) => v.motionGood),
  );
}
