/**
 * `prfl generate`: videos from prompts with the embedded models (Wan pipeline: flow UniPC, shift
 * extra_model.scheduler.flow_shift, classifier-free guidance), decoded, written as an animated GIF or a
 * PNG frame strip, each judged by the MovingShapes oracle and scored by the PAVRM.
 */
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { encodePng, frameStrip, judgeVideo, parsePrompt, type Video } from '@prfl/datasets';
import { WanPipeline } from '@prfl/models';
import { type EmbeddedModels, type JudgedVideo, judged } from '@prfl/pretrained';
import { addNoise } from '@prfl/reward';
import {
  Generator,
  seededNoise,
  type LatentVideo,
  type Sigma,
  type Timestep,
  timestep as asTimestep,
  timestepToSigma,
} from '@prfl/tensor';
import type { ResolvedConfig } from '../config/resolve.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { encodeGif } from '../gif.js';
import { throwIfInterrupted } from '../interrupt.js';
import { defaultRunDir, RunDir, writeBytesAtomic } from '../run-dir.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';

export interface GenerateCommandOptions {
  prompt: string[];
  seed?: number;
  steps?: number;
  guidance?: number;
  timestep?: number;
  out?: string;
  weights?: string;
  runDir?: string;
  fps: number;
  scale: number;
  batchSize: number;
}

export interface GeneratedVideo extends JudgedVideo {
  /** The PAVRM's probability at `timestep` (absent when the weights have no PAVRM). */
  reward?: number;
}

export interface GenerateResult {
  out: string;
  runDir: string | null;
  backend: string;
  steps: number;
  guidance: number;
  seed: number;
  timestep: number;
  frames: number;
  height: number;
  width: number;
  videos: GeneratedVideo[];
  elapsedMs: number;
}

/** The output format from the file name. */
export function outputFormat(file: string): 'gif' | 'png' {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.gif') return 'gif';
  if (ext === '.png') return 'png';
  throw new UsageError(`--out ${file}: expected a .gif (animation) or .png (frame strip) file name`);
}

/**
 * PAVRM probabilities of clean latents [B, F', H', W', C] read at timestep T: at T > 0 the latents are
 * first noised to sigma = T / 1000 with seeded noise, since the PAVRM reads a latent at the noise level
 * its timestep says.
 */
export function rewardProbabilities(
  models: Pick<EmbeddedModels, 'reward'>,
  latents: LatentVideo,
  text: tf.Tensor3D,
  timestep: number,
  seed: string,
): Float32Array | undefined {
  const reward = models.reward;
  if (reward === undefined) return undefined;
  const batch = latents.shape[0];
  return tf.tidy(() => {
    let x: tf.Tensor = latents;
    if (timestep > 0) {
      const eps = new Generator(seed).normal(latents.shape);
      const sigma = timestepToSigma(timestep as Timestep) as Sigma;
      x = addNoise(
        latents,
        eps,
        Array.from({ length: batch }, () => sigma),
      );
    }
    const t = Array.from({ length: batch }, () => asTimestep(timestep));
    return reward.probability(x as LatentVideo, t, { text }).dataSync() as Float32Array;
  });
}

export async function generate(ctx: CommandContext, o: GenerateCommandOptions): Promise<GenerateResult> {
  const began = performance.now();
  const prompts = o.prompt ?? [];
  if (prompts.length === 0) {
    throw new UsageError(
      'generate: give at least one --prompt (e.g. --prompt "a large red circle moving left")',
    );
  }
  for (const p of prompts) parsePrompt(p); // A prompt outside the grammar fails here, before any loading.
  if (o.out !== undefined) outputFormat(o.out);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
    throw new UsageError(`--batch-size: expected a positive integer, got ${o.batchSize}`);
  }
  const config: ResolvedConfig = await ctx.config([
    { key: 'eval.seed', value: o.seed, flag: '--seed' },
    { key: 'prfl.sampling.num_steps', value: o.steps, flag: '--steps' },
    { key: 'prfl.sampling.guidance_scale', value: o.guidance, flag: '--guidance' },
    { key: 'eval.timestep', value: o.timestep, flag: '--timestep' },
  ]);
  const seed = config.number('eval.seed');
  const steps = config.number('prfl.sampling.num_steps');
  const guidance = config.number('prfl.sampling.guidance_scale');
  const timestep = config.number('eval.timestep');
  const shift = config.number('extra_model.scheduler.flow_shift');
  const weights = weightsFolder(o.weights !== undefined ? ctx.resolve(o.weights) : undefined);

  // A run folder when asked for, or when no --out says where the video goes.
  const run =
    o.runDir !== undefined || o.out === undefined
      ? await RunDir.open(
          o.runDir !== undefined
            ? ctx.resolve(o.runDir)
            : defaultRunDir(ctx.io.cwd, 'generate', ctx.io.now()),
          config,
        )
      : undefined;
  const out = o.out !== undefined ? ctx.resolve(o.out) : (run as RunDir).file('video.gif');
  const format = outputFormat(out);

  try {
    const backend = await ctx.backend();
    ctx.progress.phase('load', 1);
    const models = await loadModels(weights);
    ctx.progress.update(1);
    try {
      const { frames, height, width } = models.manifest.world;
      const shape = models.vae.latentShape(frames, height, width);
      const pipeline = new WanPipeline({
        model: models.dit,
        textEncoder: models.textEncoder,
        vae: models.vae,
        scheduleOptions: { shift },
      });
      const batches = Math.ceil(prompts.length / o.batchSize);
      ctx.progress.phase('sample', steps * batches);
      const videos: GeneratedVideo[] = [];
      const decoded: Video[] = [];
      for (let b = 0; b < batches; b++) {
        const batch = prompts.slice(b * o.batchSize, (b + 1) * o.batchSize);
        const seeds = batch.map((_, j) => `${seed}-${b * o.batchSize + j}`);
        const noise = seededNoise(seeds, shape) as LatentVideo;
        const result = await pipeline
          .generate({
            prompt: batch,
            noise,
            latentShape: [shape[0], shape[1], shape[2]],
            guidanceScale: guidance,
            numSteps: steps,
            onProgress: (p) => {
              throwIfInterrupted(ctx.signal);
              ctx.progress.update(b * steps + p.step);
            },
          })
          .finally(() => noise.dispose());
        const framesT = result.frames as tf.Tensor5D;
        const data = await framesT.data();
        const [, f, h, w] = framesT.shape;
        const size = f * h * w * 3;
        const { text, mask } = models.textEncoder.encode(batch);
        const rewards = rewardProbabilities(models, result.latents, text, timestep, `${seed}-score-${b}`);
        tf.dispose([framesT, result.latents, text, mask]);
        batch.forEach((prompt, j) => {
          const video: Video = {
            frames: f,
            height: h,
            width: w,
            data: data.slice(j * size, (j + 1) * size) as Float32Array,
          };
          decoded.push(video);
          const verdict: GeneratedVideo = judged(prompt, seeds[j] as string, judgeVideo(video, prompt));
          if (rewards !== undefined) verdict.reward = rewards[j] as number;
          videos.push(verdict);
          run?.metrics({ video: videos.length - 1, timestep, ...verdict });
        });
      }
      ctx.progress.end();
      const bytes =
        format === 'gif'
          ? encodeGif(decoded, { fps: o.fps, scale: o.scale })
          : encodePng(frameStrip(decoded, { scale: o.scale }), (d) => deflateSync(d));
      await writeBytesAtomic(out, bytes);
      return {
        out,
        runDir: run?.dir ?? null,
        backend,
        steps,
        guidance,
        seed,
        timestep,
        frames,
        height,
        width,
        videos,
        elapsedMs: Math.round(performance.now() - began),
      };
    } finally {
      disposeEmbedded(models);
    }
  } finally {
    run?.close();
  }
}

/** The result as text. */
export function formatGenerate(r: GenerateResult): string {
  const lines = [
    `wrote ${r.out}: ${r.videos.length} video${r.videos.length === 1 ? '' : 's'} of ${r.frames} frames ${r.width}x${r.height}, ` +
      `${r.steps} steps, guidance ${r.guidance}, seed ${r.seed}, ${r.backend}, ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
  r.videos.forEach((v, i) => {
    const motion = v.motionGood ? 'motion good' : 'motion BAD';
    const adherence = v.adherent
      ? 'follows the prompt'
      : `does NOT follow the prompt (${[!v.colourOk && 'colour', !v.shapeOk && 'shape', !v.motionOk && 'motion'].filter(Boolean).join(', ')})`;
    const reward = v.reward !== undefined ? `  PAVRM p=${v.reward.toFixed(3)} at t=${r.timestep}` : '';
    lines.push(
      `  #${i} "${v.prompt}" (seed ${v.seed}): oracle ${motion} (${v.motionScore.toFixed(2)}), ${adherence} (${v.adherenceScore.toFixed(2)})${reward}`,
    );
  });
  if (r.runDir !== null) lines.push(`run folder: ${r.runDir}`);
  return `${lines.join('\n')}\n`;
}
