/**
 * Videos from the embedded generator, judged by the MovingShapes oracle: what the reward data are made
 * of (the paper's setup in miniature: the base model's own generations, labelled by the oracle in place
 * of human annotators) and what every quality number of the generator is measured with.
 *
 * Generation is the Wan pipeline (flow UniPC, shift 5, classifier-free guidance) on batches of prompts;
 * each video is decoded, judged for motion quality (physics and shape integrity) and prompt adherence
 * (colour, shape and motion; the size is reported but not required, the embedded world has one size),
 * and only its latent is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { judgeVideo, type OracleReport } from '@prfl/datasets';
import { type TransformerTextEncoder, type WanDiT, WanPipeline, type WanVAE } from '@prfl/models';
import { InvalidArgumentError, type LatentVideo, seededNoise, type VelocityModel } from '@prfl/tensor';

/** One judged video. */
export interface JudgedVideo {
  prompt: string;
  /** Seed of its initial noise. */
  seed: string;
  /** The oracle's motion-quality label: 1 = physically plausible and the shape intact. */
  motionGood: 0 | 1;
  /** Colour, shape and motion as the prompt says (the size is not required). */
  adherent: 0 | 1;
  colourOk: boolean;
  shapeOk: boolean;
  motionOk: boolean;
  sizeOk: boolean;
  /** The oracle's scores in (0, 1), 0.5 at its decision threshold. */
  motionScore: number;
  adherenceScore: number;
}

export interface GenerateJudgedOptions {
  /** One video per prompt (repeat a prompt for several seeds). */
  prompts: readonly string[];
  /** Video i uses the noise of seed `${seed}-${firstIndex + i}`. */
  seed: string | number;
  /** Index of the first video in the seed names (default 0): a part of a larger run, made elsewhere. */
  firstIndex?: number;
  /** Classifier-free guidance scale (default 4). */
  guidanceScale?: number;
  /** Sampling steps (default 20). */
  numSteps?: number;
  /** Videos per pipeline call (default 8). */
  batchSize?: number;
  /** Frames, height, width (default 17 x 64 x 64). */
  frames?: number;
  height?: number;
  width?: number;
  /** Another velocity model than `models.dit` (a fine-tuned copy, a PromptedGenerator's DiT, ...). */
  model?: VelocityModel;
  onProgress?: (done: number, total: number) => void;
}

export interface JudgedGenerations {
  /** Normalised latents [N, F', H', W', C] of the videos. The caller disposes them. */
  latents: LatentVideo;
  /** The text embeddings they were generated from [N, L, D]. The caller disposes them. */
  text: tf.Tensor3D;
  videos: JudgedVideo[];
}

/** The verdicts of the oracle on one decoded video. */
export function judged(prompt: string, seed: string, report: OracleReport): JudgedVideo {
  const a = report.promptAdherence;
  if (a === undefined) throw new InvalidArgumentError('judged: the oracle report has no prompt adherence');
  const adherent = a.colour.ok && a.shape.ok && a.motion.ok;
  return {
    prompt,
    seed,
    motionGood: report.motionQuality.label,
    adherent: adherent ? 1 : 0,
    colourOk: a.colour.ok,
    shapeOk: a.shape.ok,
    motionOk: a.motion.ok,
    sizeOk: a.size.ok,
    motionScore: report.motionQuality.score,
    adherenceScore: Math.min(a.colour.score, a.shape.score, a.motion.score),
  };
}

/** Generates, decodes and judges one video per prompt. */
export async function generateJudged(
  models: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE },
  options: GenerateJudgedOptions,
): Promise<JudgedGenerations> {
  const { prompts } = options;
  if (!Array.isArray(prompts) || prompts.length === 0 || prompts.some((p) => typeof p !== 'string')) {
    throw new InvalidArgumentError('generateJudged: prompts must be a non-empty array of strings');
  }
  const batchSize = options.batchSize ?? 8;
  const firstIndex = options.firstIndex ?? 0;
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 0) {
    throw new InvalidArgumentError(
      `generateJudged: firstIndex must be a non-negative integer, got ${String(firstIndex)}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError(
      `generateJudged: batchSize must be a positive integer, got ${String(batchSize)}`,
    );
  }
  const pipeline = new WanPipeline({
    model: options.model ?? models.dit,
    textEncoder: models.textEncoder,
    vae: models.vae,
  });
  const frames0 = options.frames ?? 17;
  const height = options.height ?? 64;
  const width = options.width ?? 64;
  const latents: tf.Tensor[] = [];
  const texts: tf.Tensor[] = [];
  const videos: JudgedVideo[] = [];
  try {
    for (let i = 0; i < prompts.length; i += batchSize) {
      const batch = prompts.slice(i, i + batchSize);
      const seeds = batch.map((_, j) => `${String(options.seed)}-${firstIndex + i + j}`);
      const shape = models.vae.latentShape(frames0, height, width);
      const noise = seededNoise(seeds, shape) as LatentVideo;
      const out = await pipeline
        .generate({
          prompt: batch,
          noise,
          latentShape: [shape[0], shape[1], shape[2]],
          guidanceScale: options.guidanceScale ?? 4,
          numSteps: options.numSteps ?? 20,
        })
        .finally(() => noise.dispose());
      const frames = out.frames as tf.Tensor5D;
      const data = await frames.data();
      const [, f, h, w] = frames.shape;
      const size = f * h * w * 3;
      batch.forEach((prompt, j) => {
        const video = {
          frames: f,
          height: h,
          width: w,
          data: data.slice(j * size, (j + 1) * size) as Float32Array,
        };
        videos.push(judged(prompt, seeds[j] as string, judgeVideo(video, prompt)));
      });
      frames.dispose();
      latents.push(out.latents);
      const { text, mask } = models.textEncoder.encode(batch);
      mask.dispose();
      texts.push(text);
      options.onProgress?.(videos.length, prompts.length);
    }
    return {
      latents: tf.concat(latents, 0) as LatentVideo,
      text: tf.concat(texts, 0) as tf.Tensor3D,
      videos,
    };
  } finally {
    tf.dispose([...latents, ...texts]);
  }
}
