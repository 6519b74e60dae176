/**
 * The whole recipe of the embedded default, one call: VAE, then text encoder + DiT (SFT), then PAVRM on
 * the DiT's own generations labelled by the oracle, then the weights folder. Every stage checkpoints in
 * its own sub-folder of `runDir` and is skipped or resumed when run again, so an interrupted run
 * continues where it stopped and a finished one only rewrites the weights. The same call on the same
 * backend writes the same weights.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadWanVAE, saveWanVAE, type WanVAE } from '@prfl/models';
import { InvalidArgumentError } from '@prfl/tensor';
import { disposePavrm, type EmbeddedManifest } from '../embedded.js';
import { EMBEDDED_WORLD } from '../world.js';
import { saveEmbedded } from './save-embedded.js';
import { type TrainGeneratorOptions, trainGenerator } from './train-generator.js';
import { type TrainRewardOptions, trainReward } from './train-reward.js';
import {
  type TrainEmbeddedVaeOptions,
  type TuneVaeDecoderOptions,
  trainEmbeddedVae,
  tuneVaeDecoder,
} from './train-vae.js';

export interface PretrainProgress {
  stage: 'vae' | 'decoder' | 'encode' | 'generator' | 'generate' | 'reward';
  done: number;
  total: number;
  elapsedMs: number;
  metrics?: Record<string, number>;
}

export interface PretrainOptions {
  /** Checkpoints and caches of every stage. */
  runDir: string;
  /** Where the weights folder is written (the layout `loadEmbedded` reads). */
  out: string;
  /** One seed for everything (default 1). */
  seed?: number;
  /** A minute-long run with tiny budgets: checks the pipeline, not the quality. */
  quick?: boolean;
  /** Stage options over the defaults (and over `quick`'s). */
  vae?: Partial<TrainEmbeddedVaeOptions>;
  decoder?: Partial<TuneVaeDecoderOptions>;
  generator?: Partial<Omit<TrainGeneratorOptions, 'vae'>>;
  reward?: Partial<Omit<TrainRewardOptions, 'models'>>;
  log?: (line: string) => void;
  onProgress?: (p: PretrainProgress) => void;
  signal?: AbortSignal;
}

export interface PretrainResult {
  manifest: EmbeddedManifest;
  out: string;
}

/** The budgets of `quick`: every stage runs, each for seconds. */
const QUICK = {
  vae: {
    phases: [
      { name: 'frames', steps: 2, batch: 2, frames: 1 },
      { name: 'clips', steps: 2, batch: 1, frames: 5 },
    ],
    statsClips: 2,
  },
  decoder: { phases: [{ name: 'decoder', steps: 2, batch: 1, frames: 5, decoderOnly: true }] },
  generator: { clips: 16, steps: 4, annealSteps: 2, batchSize: 4, checkpointEvery: 2 },
  reward: { generations: 16, steps: 4, batchSize: 4, numSteps: 4, checkpointEvery: 2 },
} as const;

export async function pretrain(options: PretrainOptions): Promise<PretrainResult> {
  const { runDir, out } = options;
  if (typeof runDir !== 'string' || runDir === '' || typeof out !== 'string' || out === '') {
    throw new InvalidArgumentError(
      `pretrain: runDir and out must be folder paths, got ${JSON.stringify(runDir)} and ${JSON.stringify(out)}`,
    );
  }
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed))
    throw new InvalidArgumentError(`pretrain: seed must be an integer, got ${seed}`);
  const log = options.log ?? (() => {});
  const stop = () => options.signal?.aborted === true;
  const times: Record<string, number> = {};
  const began = performance.now();
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    times[name] = Math.round((performance.now() - t) / 1000);
    return r;
  };

  // 1. The VAE.
  const vaeOptions = { seed, ...(options.quick ? QUICK.vae : {}), ...options.vae };
  const vaeFile = path.join(runDir, 'vae', 'vae.safetensors');
  let vae: WanVAE;
  if (existsSync(vaeFile)) {
    log(`vae: trained already (${vaeFile})`);
    vae = await loadWanVAE(vaeFile);
  } else {
    log('vae: training');
    vae = await timed('vae', () =>
      trainEmbeddedVae({
        ...vaeOptions,
        checkpointDir: path.join(runDir, 'vae'),
        onProgress: (p) =>
          options.onProgress?.({
            stage: 'vae',
            done: p.step,
            total: p.steps,
            elapsedMs: p.elapsedMs,
            metrics: { loss: p.loss, reconstruction: p.reconstruction, kl: p.kl },
          }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }),
    );
    if (stop()) return stopped(log);
    await saveWanVAE(vae, vaeFile);
  }

  // 1b. The decoder, on the narrow world's own clips (the encoder and every latent stay as they are).
  const decoderOptions = { seed, ...(options.quick ? QUICK.decoder : {}), ...options.decoder };
  const decoderFile = path.join(runDir, 'decoder', 'vae.safetensors');
  if (existsSync(decoderFile)) {
    log(`decoder: tuned already (${decoderFile})`);
    vae.dispose();
    vae = await loadWanVAE(decoderFile);
  } else {
    log("decoder: tuning on the world's clips");
    await timed('decoder', () =>
      tuneVaeDecoder(vae, {
        ...decoderOptions,
        checkpointDir: path.join(runDir, 'decoder'),
        onProgress: (p) =>
          options.onProgress?.({
            stage: 'decoder',
            done: p.step,
            total: p.steps,
            elapsedMs: p.elapsedMs,
            metrics: { loss: p.loss },
          }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }),
    );
    if (stop()) return stopped(log);
    await saveWanVAE(vae, decoderFile);
  }

  // 2. The text encoder and the DiT.
  log('generator: text encoder + DiT, flow-matching SFT');
  const generatorOptions = { seed, ...(options.quick ? QUICK.generator : {}), ...options.generator };
  const gen = await timed('generator', () =>
    trainGenerator({
      ...generatorOptions,
      vae,
      runDir: path.join(runDir, 'generator'),
      onProgress: (p) =>
        options.onProgress?.({
          stage: p.phase === 'encode' ? 'encode' : 'generator',
          done: p.done,
          total: p.total,
          elapsedMs: p.elapsedMs,
          ...(p.loss === undefined ? {} : { metrics: { loss: p.loss } }),
        }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }),
  );
  if (stop()) return stopped(log);

  // 3. The PAVRM on the generator's own videos, labelled by the oracle.
  log('reward: generations labelled by the oracle, then PAVRM');
  const rewardOptions = { seed, ...(options.quick ? QUICK.reward : {}), ...options.reward };
  const rew = await timed('reward', () =>
    trainReward({
      ...rewardOptions,
      models: { vae, textEncoder: gen.textEncoder, dit: gen.dit },
      runDir: path.join(runDir, 'reward'),
      // Generations of another generator (an earlier, shorter run in this folder) are made again.
      cacheKey: `generator step ${gen.step}`,
      onProgress: (p) =>
        options.onProgress?.({
          stage: p.phase === 'generate' ? 'generate' : 'reward',
          done: p.done,
          total: p.total,
          elapsedMs: p.elapsedMs,
          ...(p.loss === undefined ? {} : { metrics: { loss: p.loss, accuracy: p.accuracy ?? Number.NaN } }),
        }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }),
  );
  if (stop()) return stopped(log);
  const goodRate = rew.videos.filter((v) => v.motionGood).length / rew.videos.length;

  // 4. The weights folder.
  const manifest = await saveEmbedded(
    { vae, textEncoder: gen.textEncoder, dit: gen.dit, reward: rew.reward },
    out,
    {
      world: EMBEDDED_WORLD,
      rewardBlocks: rewardOptions.blocks ?? 2,
      recipe: {
        command: 'npm run pretrain -w @prfl/pretrained',
        seed,
        quick: options.quick === true,
        backend: tf.getBackend(),
        vae: vaeOptions,
        decoder: decoderOptions,
        generator: generatorOptions,
        reward: {
          ...rewardOptions,
          cacheKey: `generator step ${gen.step}`,
          motionGoodRateOfGenerations: goodRate,
        },
        secondsPerStage: times,
        totalSeconds: Math.round((performance.now() - began) / 1000),
      },
    },
  );
  log(`weights written to ${out}`);
  disposePavrm(rew.reward);
  gen.dit.dispose();
  gen.textEncoder.dispose();
  vae.dispose();
  return { manifest, out };
}

function stopped(log: (line: string) => void): never {
  log('stopped: run the same command again to continue from the last checkpoint');
  throw new InvalidArgumentError(
    'pretrain: stopped before the end (the run folder holds a resumable checkpoint)',
  );
}
