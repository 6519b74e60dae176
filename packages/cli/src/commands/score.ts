/**
 * `prfl score <file.npy>`: the PAVRM's probability that a video (or its latent) has good motion, read at
 * eval.timestep. A .npy of shape [F', H', W', C] or [B, F', H', W', C] whose last axis has the latent
 * channel count is a normalised latent (what the pipeline returns); [F, H, W, 3] or [B, F, H, W, 3] is a
 * video in [-1, 1] (float) or 0..255 (uint8), encoded with the VAE first.
 */
import * as tf from '@tensorflow/tfjs-core';
import { npyToFloat32, readNpy } from '@prfl/datasets';
import type { LatentVideo } from '@prfl/tensor';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';
import { rewardProbabilities } from './generate.js';

export interface ScoreCommandOptions {
  prompt: string[];
  weights?: string;
  timestep?: number;
  seed?: number;
  kind: 'auto' | 'latent' | 'video';
}

export interface ScoreResult {
  file: string;
  kind: 'latent' | 'video';
  shape: number[];
  timestep: number;
  prompts: string[];
  probabilities: number[];
}

export async function score(ctx: CommandContext, file: string, o: ScoreCommandOptions): Promise<ScoreResult> {
  const prompts = o.prompt ?? [];
  if (prompts.length === 0) throw new UsageError('score: give the video’s --prompt');
  if (!['auto', 'latent', 'video'].includes(o.kind)) {
    throw new UsageError(`--kind: expected auto, latent or video, got ${JSON.stringify(o.kind)}`);
  }
  const config = await ctx.config([
    { key: 'eval.timestep', value: o.timestep, flag: '--timestep' },
    { key: 'eval.seed', value: o.seed, flag: '--seed' },
  ]);
  const timestep = config.number('eval.timestep');
  const weights = weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);
  const path = ctx.resolve(file);
  const array = await readNpy(path);
  const shape = array.shape.length === 4 ? [1, ...array.shape] : [...array.shape];
  if (shape.length !== 5) {
    throw new UsageError(
      `${file}: expected a latent [F', H', W', C] or video [F, H, W, 3] (optionally with a batch axis first), got shape [${array.shape.join(', ')}]`,
    );
  }
  const batch = shape[0] as number;
  if (prompts.length !== 1 && prompts.length !== batch) {
    throw new UsageError(
      `score: ${batch} videos in ${file} but ${prompts.length} prompts; give one, or one per video`,
    );
  }
  const perVideo = prompts.length === 1 ? Array.from({ length: batch }, () => prompts[0] as string) : prompts;

  await ctx.backend();
  const models = await loadModels(weights);
  try {
    if (models.reward === undefined) throw new UsageError('score: the weights have no PAVRM');
    const channels = models.vae.latentChannels;
    const last = shape[4] as number;
    const kind = o.kind !== 'auto' ? o.kind : last === channels ? 'latent' : last === 3 ? 'video' : undefined;
    if (kind === undefined || (kind === 'latent' && last !== channels) || (kind === 'video' && last !== 3)) {
      throw new UsageError(
        `${file}: the last axis is ${last}; a latent has ${channels} channels (the VAE's), a video 3 (RGB)`,
      );
    }
    let values = npyToFloat32(array, file);
    if (kind === 'video') {
      if (array.dtype === '|u1') values = values.map((v) => v / 127.5 - 1);
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (const v of values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (lo < -1.5 || hi > 1.5) {
        throw new UsageError(
          `${file}: a float video must hold values in [-1, 1] (or be uint8 0..255), got values in [${lo.toPrecision(3)}, ${hi.toPrecision(3)}]`,
        );
      }
    }
    const input = tf.tensor5d(values, shape as [number, number, number, number, number]);
    const latents = (kind === 'video' ? tf.tidy(() => models.vae.encode(input)) : input) as LatentVideo;
    const { text, mask } = models.textEncoder.encode(perVideo);
    try {
      const p = rewardProbabilities(models, latents, text, timestep, `${config.number('eval.seed')}-score`);
      return {
        file: path,
        kind,
        shape: array.shape,
        timestep,
        prompts: perVideo,
        probabilities: Array.from(p ?? []),
      };
    } finally {
      tf.dispose([input, latents, text, mask]);
    }
  } finally {
    disposeEmbedded(models);
  }
}

export function formatScore(r: ScoreResult): string {
  const lines = [`${r.file}: ${r.kind} [${r.shape.join(', ')}], PAVRM at t=${r.timestep}`];
  r.probabilities.forEach((p, i) => {
    lines.push(`  #${i} "${r.prompts[i]}": p(good motion) = ${p.toFixed(4)}`);
  });
  return `${lines.join('\n')}\n`;
}
