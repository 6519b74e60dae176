/**
 * `prfl bench steps`: what one call of each piece of the method costs on the embedded models (the shipped
 * weights, or --weights DIR): one video generated with the embedded sampler; the PAVRM's forward pass and
 * training step on a batch of noisy latents; and one training step of PRFL, SFT, reward-weighted
 * regression and the RGB ReFL baseline (decoding the first latent frame, as the paper does, and all
 * frames), on the same generator, batch and backend, plus PRFL's speed-up over RGB ReFL from the same run.
 *
 * Every reward step trains the same step k, the middle of RGB ReFL's own range (the last third of the
 * chain), so that the methods differ only in what the reward reads (as packages/refl/bench/refl.mjs
 * compares them); PRFL's own range (the whole chain) has a lower mean k, so in training its advantage is
 * larger than the ratio here. Every step makes its own AdamW update (accumulation 1), so each measured
 * step holds the same work. The five trainers are measured interleaved, one step of each per round, so
 * that load from other processes falls on all of them alike and their ratios hold on a busy machine. The pixel reward is an untrained PixelVideoReward (its cost does not depend
 * on its weights) computed as pixel-reward.ts explains. The trainers update the loaded models in memory
 * only; nothing is written back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatPrompt } from '@prfl/datasets';
import { WanPipeline } from '@prfl/models';
import { type EmbeddedModels, type EmbeddedWorld, goodClipData, worldPrompts } from '@prfl/pretrained';
import {
  createRgbReflTrainer,
  createRwrTrainer,
  createSftTrainer,
  PrflTrainer,
  type PrflStepMetrics,
  type PrflTrainerOptions,
  RGB_REFL_PRESET,
  resolveStepRange,
  type VideoBatch,
} from '@prfl/refl';
import { addNoise, PavrmTrainer, PixelVideoReward, sampleTrainingSigmas } from '@prfl/reward';
import { Generator, type LatentVideo, type PointwiseBatch, type Timestep } from '@prfl/tensor';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { disposeEmbedded, loadModels, weightsFolder } from '../weights.js';
import { type BenchItem, type PreparedItem, runItems } from './items.js';
import { ConvPathPixelReward } from './pixel-reward.js';
import { rowRatio } from './ratios.js';
import { median, roundSeconds } from './timing.js';
import type { BenchDefinition, BenchOptions, BenchOutcome } from './types.js';

/**
 * The embedded models' sampler: what generateJudged, evaluateGenerator and the demo generate with (the
 * small DiT is trained for it), and the length of the chain the trainers roll out.
 */
export const EMBEDDED_SAMPLING = Object.freeze({ numSteps: 20, guidanceScale: 4 });

/** The trainers' steps are measured interleaved, round by round (items.ts). */
const TRAINING_GROUP = 'training steps';

/** Every seed of the benchmark derives from this one. */
const SEED = 'prfl-bench/steps';

/** The step k every reward step trains: the middle of RGB ReFL's own range on a `numSteps` chain. */
export function benchStep(numSteps: number): number {
  const [lo, hi] = resolveStepRange(RGB_REFL_PRESET.stepRange ?? 'late', numSteps);
  return Math.round((lo + hi) / 2);
}

function parameterCount(vars: ReadonlyMap<string, tf.Variable>): number {
  let n = 0;
  for (const v of vars.values()) n += v.size;
  return n;
}

/** Median seconds per phase (rollout, taped step, decode, reward, backward, update) of measured steps. */
function phaseSeconds(steps: readonly PrflStepMetrics[]): Record<string, number> {
  const names = [...new Set(steps.flatMap((s) => Object.keys(s.phases)))];
  return Object.fromEntries(
    names.map((p) => [
      p,
      roundSeconds(median(steps.map((s) => (s.phases[p as keyof typeof s.phases]?.ms ?? 0) / 1000))),
    ]),
  );
}

/** A trainer's step on `batch` as an item; the row adds k, the time per phase and skipped steps. */
function trainerItem(
  id: string,
  what: string,
  batch: VideoBatch,
  make: () => PrflTrainer,
  withReward: boolean,
): BenchItem {
  return {
    id,
    what,
    batch: batch.latents.shape[0],
    group: TRAINING_GROUP,
    prepare(): PreparedItem {
      const trainer = make();
      const steps: PrflStepMetrics[] = [];
      return {
        call: () => {
          steps.push(trainer.trainStep(batch));
        },
        extra: (timing) => {
          const measured = steps.slice(-timing.repeats);
          return {
            ...(withReward ? { k: measured[0]?.k } : {}),
            skippedSteps: measured.filter((s) => s.skipped).length,
            phaseMedianSeconds: phaseSeconds(measured),
          };
        },
        dispose: () => trainer.dispose(),
      };
    },
  };
}

/** The data every item reads, made once from the models (good clips of the training prompts, encoded). */
interface StepsData {
  batch: VideoBatch;
  pointwise: PointwiseBatch;
  noisy: LatentVideo;
  timesteps: Timestep[];
  nullText: tf.Tensor3D;
  dispose(): void;
}

function makeData(models: EmbeddedModels, world: EmbeddedWorld, batchSize: number): StepsData {
  const clips = goodClipData(models, world, batchSize, `${SEED}/clips`);
  const conditioning = { text: clips.text };
  const empty = models.textEncoder.encode(['']);
  empty.mask.dispose();
  // Half labelled good motion, half bad (the labels' values do not change the step's cost).
  const labels = tf.tensor1d(
    Array.from({ length: batchSize }, (_, i) => i % 2),
    'float32',
  );
  // The PAVRM reads latents noised as in its training: the reference's noise levels, seeded.
  const noise = new Generator(`${SEED}/pavrm-noise`);
  const levels = sampleTrainingSigmas(noise, batchSize);
  const noisy = tf.tidy(
    () => addNoise(clips.latents, noise.normal(clips.latents.shape), levels.sigmas) as LatentVideo,
  );
  return {
    batch: { latents: clips.latents, conditioning },
    pointwise: {
      ids: Array.from({ length: batchSize }, (_, i) => `${SEED}/clip-${i}`),
      latents: clips.latents,
      conditioning,
      labels,
    },
    noisy,
    timesteps: levels.timesteps,
    nullText: empty.text,
    dispose: () => tf.dispose([clips.latents, clips.text, labels, noisy, empty.text]),
  };
}

async function runSteps(ctx: CommandContext, o: BenchOptions): Promise<BenchOutcome> {
  const weights = weightsFolder(o.weights);
  ctx.progress.phase('load', 1);
  const models = await loadModels(weights);
  ctx.progress.update(1);
  ctx.progress.end();
  try {
    const reward = models.reward;
    if (reward === undefined) {
      throw new UsageError(`--weights ${weights}: expected a PAVRM in the weights folder, found none`);
    }
    // The world's videos, or as long as --frames says (the models are the same; only the clips grow).
    const world = { ...models.manifest.world, frames: o.frames ?? models.manifest.world.frames };
    const { numSteps, guidanceScale } = EMBEDDED_SAMPLING;
    const k = benchStep(numSteps);
    const data = makeData(models, world, o.batchSize);
    const pixel = new PixelVideoReward({}, { seed: `${SEED}/pixel-reward` });
    try {
      // The trainers train the DiT the loaded weights froze (as finetuneWithPrfl does).
      for (const v of models.dit.namedVariables().values()) v.trainable = true;
      const nullConditioning = { text: data.nullText };
      const common: PrflTrainerOptions = { numSteps, accumulationSteps: 1, stepRange: [k, k] };
      const pixelReward = new ConvPathPixelReward(pixel);
      const first = worldPrompts(world, 'train')[0];
      if (first === undefined) {
        throw new UsageError(
          `--weights ${weights}: expected training prompts in the manifest's world, got none`,
        );
      }
      const prompt = formatPrompt(first);
      const pipeline = new WanPipeline({
        model: models.dit,
        textEncoder: models.textEncoder,
        vae: models.vae,
      });
      const rgb = (frames: 'first' | 'all') => () =>
        createRgbReflTrainer(
          { generator: models.dit, reward: pixelReward, decoder: models.vae, nullConditioning },
          { ...common, decodeFrames: frames },
        );
      const items: BenchItem[] = [
        {
          id: 'generate',
          what: `generate one video (${numSteps} steps, guidance ${guidanceScale})`,
          batch: 1,
          prepare: () => ({
            call: async () => {
              const out = await pipeline.generate({
                prompt: [prompt],
                frames: world.frames,
                height: world.height,
                width: world.width,
                seed: `${SEED}/generate`,
                numSteps,
                guidanceScale,
              });
              await (out.frames ?? out.latents).data();
              tf.dispose([out.frames, out.latents].filter((t) => t !== undefined));
            },
            dispose: () => {},
          }),
        },
        {
          id: 'pavrm-forward',
          what: 'PAVRM forward',
          batch: o.batchSize,
          prepare: () => ({
            call: async () => {
              const logits = reward.score(data.noisy, data.timesteps, data.batch.conditioning);
              await logits.data();
              logits.dispose();
            },
            dispose: () => {},
          }),
        },
        {
          id: 'pavrm-train',
          what: 'PAVRM training step',
          batch: o.batchSize,
          prepare: () => {
            const trainer = new PavrmTrainer(reward);
            return {
              call: () => trainer.trainStep(data.pointwise),
              dispose: () => trainer.dispose(),
            };
          },
        },
        trainerItem(
          'prfl',
          'PRFL step',
          data.batch,
          () => new PrflTrainer({ generator: models.dit, reward, nullConditioning }, common),
          true,
        ),
        trainerItem(
          'sft',
          'SFT step',
          data.batch,
          () => createSftTrainer({ generator: models.dit, nullConditioning }, common),
          false,
        ),
        trainerItem(
          'rwr',
          'RWR step',
          data.batch,
          () => createRwrTrainer({ generator: models.dit, reward, nullConditioning }, common),
          false,
        ),
        trainerItem('rgb-refl-first', 'RGB ReFL step (first frame)', data.batch, rgb('first'), true),
        trainerItem('rgb-refl-all', 'RGB ReFL step (all frames)', data.batch, rgb('all'), true),
      ];
      const rows = await runItems(ctx, 'steps', items, o);
      const latentShape = models.vae.latentShape(world.frames, world.height, world.width);
      return {
        settings: {
          weights,
          batchSize: o.batchSize,
          repeats: o.repeats,
          warmup: o.warmup,
          video: { frames: world.frames, height: world.height, width: world.width, latentShape },
          generation: { videos: 1, numSteps, guidanceScale, prompt },
          training: {
            numSteps,
            k,
            kRule:
              "every reward step at one k: the middle of RGB ReFL's own range (the last third of the chain)",
            accumulationSteps: common.accumulationSteps,
            otherOptions: 'the paper defaults of @prfl/refl (PRFL_DEFAULTS)',
          },
          pixelReward:
            'untrained PixelVideoReward on @prfl/tensor conv3d (same function; tf.conv3d is slow and its input gradient wrong on wasm)',
          parameters: {
            dit: parameterCount(models.dit.namedVariables()),
            pavrm: parameterCount(reward.namedVariables()),
            vae: parameterCount(models.vae.namedVariables()),
            pixelReward: parameterCount(pixel.namedVariables()),
          },
        },
        rows,
        ratios: [
          rowRatio(rows, 'PRFL speed-up over RGB ReFL (first frame)', 'rgb-refl-first', 'prfl', 'seconds'),
          rowRatio(rows, 'PRFL speed-up over RGB ReFL (all frames)', 'rgb-refl-all', 'prfl', 'seconds'),
          rowRatio(
            rows,
            'peak memory of RGB ReFL (first frame) over PRFL',
            'rgb-refl-first',
            'prfl',
            'peakBytes',
          ),
        ],
      };
    } finally {
      pixel.dispose();
      data.dispose();
    }
  } finally {
    disposeEmbedded(models);
  }
}

export const stepsBench: BenchDefinition = {
  name: 'steps',
  description:
    'seconds and peak memory per call on the embedded models: one video generated, PAVRM forward and training step, PRFL, SFT, RWR and RGB ReFL (first frame, all frames) steps; PRFL speed-up over RGB ReFL',
  run: runSteps,
};
