/**
 * Stage 2 of the recipe: the text encoder and the tiny Wan DiT, trained together from scratch with
 * flow-matching SFT (docs/method.md §3.1) on latents of MovingShapes clips, a mix of good and defective
 * motion, with text dropout so that classifier-free guidance works.
 *
 * The clips are rendered, encoded once with the trained VAE (posterior mean, normalised) and cached in
 * the run folder; training is @prfl/refl's SFT trainer on a `PromptedGenerator`, so it checkpoints
 * atomically and resumes exactly from `runDir`.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { renderClips } from '../clips.js';
import { type ClipSpec, formatPrompt } from '@prfl/datasets';
import {
  TransformerTextEncoder,
  type TextEncoderPresetName,
  type WanDiTConfig,
  WanDiT,
  type WanDiTPresetName,
  type WanVAE,
  WordTokenizer,
} from '@prfl/models';
import { CHECKPOINT_FILE, createSftTrainer, PrflTrainer, tensorVideoSource } from '@prfl/refl';
import {
  assertFiniteInRange,
  InvalidArgumentError,
  type LatentVideo,
  loadTensors,
  openSafetensors,
  saveSafetensors,
} from '@prfl/tensor';
import { PromptedGenerator, tokenConditioning } from '../prompted-generator.js';
import { EMBEDDED_WORLD, type EmbeddedWorld, sampleWorldClips, worldPrompts } from '../world.js';

export interface GeneratorProgress {
  phase: 'encode' | 'train';
  done: number;
  total: number;
  /** The SFT loss of the last step (train phase). */
  loss?: number;
  elapsedMs: number;
}

export interface TrainGeneratorOptions {
  /** The trained VAE: encodes the training clips. */
  vae: WanVAE;
  world?: EmbeddedWorld;
  /** Seed of the clips, the initial weights and the training randomness (default 1). */
  seed?: number;
  /** Training clips (default 2048). */
  clips?: number;
  /** Fraction of them with a motion defect (default 0.25). */
  motionDefectRate?: number;
  /**
   * SFT micro-steps in all (default 16500; the shipped run's progress logs read 0.35-0.45 s per step on one
   * core), of which the last `annealSteps` run at `annealLr`.
   */
  steps?: number;
  /**
   * The last steps at a lower learning rate (default 500 at 1e-4). At a constant 5e-4 the sampled motion
   * swung from checkpoint to checkpoint (112 held-out videos: 25% good at 14500 steps, 11% at 16000); 500
   * steps at 1e-4 after 16000 gave 26% with 98% prompt adherence.
   */
  annealSteps?: number;
  annealLr?: number;
  /** Clips per step (default 8). */
  batchSize?: number;
  /** AdamW learning rate (default 5e-4 until the anneal; weight decay 0.01, gradient norm clipped at 1). */
  lr?: number;
  /** Probability of training a sample on the empty prompt (default 0.1, Wan's). */
  textDropout?: number;
  /** The DiT configuration (default `EMBEDDED_DIT`; a partial one is completed from `tiny`). */
  dit?: WanDiTPresetName | Partial<WanDiTConfig>;
  /** The text encoder's sizes (default `tiny`). */
  textEncoder?: TextEncoderPresetName;
  /** Folder for the latent cache and checkpoints; resumes from it when a checkpoint is there. */
  runDir?: string;
  /** Checkpoint every this many steps (default 250). */
  checkpointEvery?: number;
  onProgress?: (p: GeneratorProgress) => void;
  signal?: AbortSignal;
}

export interface TrainedGenerator {
  textEncoder: TransformerTextEncoder;
  dit: WanDiT;
  /** Where training stopped (equal to `steps` unless aborted). */
  step: number;
}

const LATENTS_FILE = 'latents.safetensors';

/**
 * The embedded generator's DiT: Wan's `tiny` preset at twice the width (D 128, FFN 256, 4 heads of 32),
 * 4 blocks, about 1M parameters. Measured on the embedded world (48 videos of training prompts, 20 steps,
 * guidance 4): the `tiny` DiT (D 64, 4 heads of 16) learned colour but not shape or direction in 11000
 * steps; with 2 heads of 32 it still made scattered fragments after 2500 steps on a world of one shape;
 * this one made one coherent shape per video after 1000 steps and, after 3500, the prompt's shape 53%
 * and direction 50% of the time. Its step took about twice `tiny`'s in those runs' progress logs.
 */
export const EMBEDDED_DIT: Partial<WanDiTConfig> = Object.freeze({ dim: 128, ffnDim: 256, numHeads: 4 });

/** The tokenizer of a world: every word of every prompt (held-out ones too), `textLen` tokens (default 16). */
export function worldTokenizer(world: EmbeddedWorld, textLen = 16): WordTokenizer {
  const prompts = [...worldPrompts(world, 'train'), ...worldPrompts(world, 'held-out')].map(formatPrompt);
  return WordTokenizer.fromPrompts(prompts, { textLen });
}

/** Trains the text encoder and the DiT; resumes from `runDir` when it holds a checkpoint. */
export async function trainGenerator(options: TrainGeneratorOptions): Promise<TrainedGenerator> {
  const world = options.world ?? EMBEDDED_WORLD;
  const seed = options.seed ?? 1;
  const clips = options.clips ?? 2048;
  const steps = options.steps ?? 16500;
  const annealSteps = options.annealSteps ?? 500;
  const lr = options.lr ?? 5e-4;
  const annealLr = options.annealLr ?? 1e-4;
  const batchSize = options.batchSize ?? 8;
  const every = options.checkpointEvery ?? 250;
  for (const [name, v] of [
    ['clips', clips],
    ['steps', steps],
    ['batchSize', batchSize],
    ['checkpointEvery', every],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new InvalidArgumentError(`trainGenerator: ${name} must be a positive integer, got ${String(v)}`);
    }
  }
  if (!Number.isInteger(annealSteps) || annealSteps < 0 || annealSteps > steps) {
    throw new InvalidArgumentError(
      `trainGenerator: annealSteps must be an integer in [0, steps = ${steps}], got ${String(annealSteps)}`,
    );
  }
  for (const [name, v] of [
    ['lr', lr],
    ['annealLr', annealLr],
  ] as const) {
    if (!(Number.isFinite(v) && v > 0 && v <= 1)) {
      throw new InvalidArgumentError(`trainGenerator: ${name} must be in (0, 1], got ${String(v)}`);
    }
  }
  if (clips < batchSize) {
    throw new InvalidArgumentError(`trainGenerator: ${clips} clips are fewer than one batch of ${batchSize}`);
  }
  const rate = options.motionDefectRate ?? 0.25;
  assertFiniteInRange('trainGenerator: motionDefectRate', rate, 0, 1);
  const start = performance.now();
  const progress = (p: Omit<GeneratorProgress, 'elapsedMs'>) =>
    options.onProgress?.({ ...p, elapsedMs: performance.now() - start });

  const specs = sampleWorldClips(world, {
    side: 'train',
    count: clips,
    seed: `${seed}/clips`,
    motionDefectRate: rate,
  });
  const latents = await encodeClips(options.vae, specs, options.runDir, (done) =>
    progress({ phase: 'encode', done, total: clips }),
  );

  const tokenizer = worldTokenizer(world);
  const textEncoder = new TransformerTextEncoder({
    tokenizer,
    config: options.textEncoder ?? 'tiny',
    seed: `${seed}/text-encoder`,
  });
  const dit = new WanDiT(options.dit ?? EMBEDDED_DIT, { base: 'tiny', seed: `${seed}/dit` });
  if (dit.config.inDim !== options.vae.latentChannels) {
    dit.dispose();
    textEncoder.dispose();
    latents.dispose();
    throw new InvalidArgumentError(
      `trainGenerator: the DiT reads ${dit.config.inDim} latent channels, the VAE makes ${options.vae.latentChannels}`,
    );
  }
  const generator = new PromptedGenerator(textEncoder, dit);
  const conditioning = tokenConditioning(
    textEncoder,
    specs.map((s) => s.prompt),
  );
  const nullConditioning = tokenConditioning(textEncoder, ['']);
  const source = tensorVideoSource({ ids: specs.map((s) => s.id), latents, conditioning });
  const trainerOptions = {
    lr,
    // The update count is the global one (restored on resume), so the switch happens at the same step
    // whether or not the run was interrupted.
    lrSchedule: (update: number) => (update >= steps - annealSteps ? annealLr / lr : 1),
    weightDecay: 0.01,
    maxGradNorm: 1,
    accumulationSteps: 1,
    textDropout: options.textDropout ?? 0.1,
    seed,
    measureMemory: false,
    onStep: (m: { step: number; sftLoss: number | null }) =>
      progress({ phase: 'train', done: m.step, total: steps, loss: m.sftLoss ?? Number.NaN }),
  };
  const components = { generator, nullConditioning };
  let trainer: PrflTrainer;
  const ckptDir = options.runDir === undefined ? undefined : path.join(options.runDir, 'sft');
  if (ckptDir !== undefined && existsSync(path.join(ckptDir, CHECKPOINT_FILE))) {
    trainer = await PrflTrainer.resume(ckptDir, components, { ...trainerOptions, rewardWeight: 0 });
  } else {
    trainer = createSftTrainer(components, trainerOptions);
  }
  try {
    const result = await trainer.fit(source, {
      // Whole batches only (dropLast): enough epochs for `steps` of them.
      epochs: Math.ceil(steps / Math.floor(clips / batchSize)) + 1,
      batchSize,
      dropLast: true,
      maxSteps: steps,
      ...(ckptDir === undefined ? {} : { checkpointDir: ckptDir, checkpointEvery: every }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { textEncoder, dit, step: result.step };
  } finally {
    trainer.dispose();
    tf.dispose([latents, conditioning.text, nullConditioning.text]);
  }
}

/**
 * Renders and encodes the clips (posterior mean, normalised latents [N, F', H', W', C]), eight per encoder
 * call. With `runDir`, the latents are cached there with the clip ids they belong to and read back when
 * the same clips (same specs, not merely the same ids) are asked for again.
 */
async function encodeClips(
  vae: WanVAE,
  specs: readonly ClipSpec[],
  runDir: string | undefined,
  onProgress: (done: number) => void,
): Promise<LatentVideo> {
  const file = runDir === undefined ? undefined : path.join(runDir, LATENTS_FILE);
  // The whole spec, not just the id: a world with other scenes under the same seeds must not reuse latents.
  const key = fingerprint(specs.map((s) => JSON.stringify(s)).join('\n'));
  if (file !== undefined && existsSync(file)) {
    const reader = await openSafetensors(file);
    try {
      if (reader.metadata?.clips === key) {
        const { latents } = await loadTensors(reader, ['latents']);
        onProgress(specs.length);
        return latents as LatentVideo;
      }
    } finally {
      await reader.close();
    }
  }
  const parts: tf.Tensor[] = [];
  const chunk = 8;
  for (let i = 0; i < specs.length; i += chunk) {
    const video = renderClips(specs.slice(i, i + chunk));
    parts.push(vae.encode(video));
    video.dispose();
    onProgress(Math.min(specs.length, i + chunk));
  }
  const latents = tf.concat(parts, 0) as LatentVideo;
  tf.dispose(parts);
  if (file !== undefined) {
    await mkdir(path.dirname(file), { recursive: true });
    await saveSafetensors(file, { latents }, { metadata: { clips: key } });
  }
  return latents;
}

/** FNV-1a of a string, as hex: names a list of clip ids in the cache's metadata. */
function fingerprint(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return `${text.length}-${h.toString(16)}`;
}
