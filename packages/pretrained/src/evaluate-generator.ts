/**
 * How good a generator's videos are, by the oracle: the motion-good rate and the prompt-adherence rate
 * (colour, shape and motion as the prompt says), each with a 95% Wilson interval, on prompts and seeds
 * the generator never trained on. The numbers every before/after comparison of prfl is made of.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt } from '@prfl/datasets';
import type { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { InvalidArgumentError, type VelocityModel } from '@prfl/tensor';
import { generateJudged, type JudgedVideo } from './generate-judged.js';
import { EMBEDDED_WORLD, type EmbeddedWorld, worldPrompts } from './world.js';

/** A rate and its 95% Wilson score interval. */
export interface Rate {
  rate: number;
  low: number;
  high: number;
  n: number;
}

/** The Wilson score interval of k successes in n trials (z = 1.96). */
export function wilson(k: number, n: number, z = 1.96): Rate {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 1 || k < 0 || k > n) {
    throw new InvalidArgumentError(`wilson: expected integers 0 <= k <= n, n >= 1, got k ${k}, n ${n}`);
  }
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return { rate: p, low: Math.max(0, c - h), high: Math.min(1, c + h), n };
}

export interface GeneratorEvaluation {
  /** Which prompts: the held-out combinations, or the training prompts with new seeds. */
  side: 'held-out' | 'train';
  motionGood: Rate;
  /** Colour, shape and motion all as the prompt says. */
  adherence: Rate;
  colour: Rate;
  shape: Rate;
  motion: Rate;
  size: Rate;
  /** Wall time per video (generation with guidance, decoding and judging), ms. */
  msPerVideo: number;
  backend: string;
  guidanceScale: number;
  numSteps: number;
  videos: JudgedVideo[];
}

export interface EvaluateGeneratorOptions {
  /** Videos (default 112: 16 per held-out prompt). */
  count?: number;
  side?: 'held-out' | 'train';
  /** Seed of the noise (default 'eval'; training data never use it). */
  seed?: string;
  world?: EmbeddedWorld;
  guidanceScale?: number;
  numSteps?: number;
  /** A fine-tuned velocity model to judge instead of `models.dit`. */
  model?: VelocityModel;
  onProgress?: (done: number, total: number) => void;
}

/** Generates `count` videos on one side's prompts (cycled) and judges them. */
export async function evaluateGenerator(
  models: { textEncoder: TransformerTextEncoder; dit: WanDiT; vae: WanVAE },
  options: EvaluateGeneratorOptions = {},
): Promise<GeneratorEvaluation> {
  const side = options.side ?? 'held-out';
  const world = options.world ?? EMBEDDED_WORLD;
  const count = options.count ?? 112;
  const guidanceScale = options.guidanceScale ?? 4;
  const numSteps = options.numSteps ?? 20;
  const prompts = worldPrompts(world, side).map(formatPrompt);
  const list = Array.from({ length: count }, (_, i) => prompts[i % prompts.length] as string);
  const start = performance.now();
  const made = await generateJudged(models, {
    prompts: list,
    seed: `${options.seed ?? 'eval'}/${side}`,
    guidanceScale,
    numSteps,
    ...(options.model === undefined ? {} : { model: options.model }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const ms = (performance.now() - start) / count;
  tf.dispose([made.latents, made.text]);
  const v = made.videos;
  const rate = (f: (x: JudgedVideo) => boolean) => wilson(v.filter(f).length, v.length);
  return {
    side,
    motionGood: rate((x) => x.motionGood === 1),
    adherence: rate((x) => x.adherent === 1),
    colour: rate((x) => x.colourOk),
    shape: rate((x) => x.shapeOk),
    motion: rate((x) => x.motionOk),
    size: rate((x) => x.sizeOk),
    msPerVideo: ms,
    backend: tf.getBackend(),
    guidanceScale,
    numSteps,
    videos: v,
  };
}
