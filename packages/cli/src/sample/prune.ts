/**
 * N seeds of one prompt denoised together by the embedded DiT, the way `prfl generate` samples (Wan
 * pipeline: flow UniPC with the configured shift, classifier-free guidance against the empty prompt):
 * with early pruning (`sampleWithEarlyPruning` of @prfl/reward, the PAVRM scoring each seed's noisy
 * latent part-way, only the survivors finished) or without it (`sampleLatents`, every seed finished).
 *
 * Flow UniPC is a multistep solver: its state holds each seed's previous model outputs. When seeds are
 * dropped the survivors continue with their own rows of that state, so a survivor ends exactly where it
 * would have ended without pruning (up to the batch size's rounding).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EmbeddedModels } from '@prfl/pretrained';
import { batchConditioning, guidedVelocity, sampleLatents, WanPipeline } from '@prfl/models';
import {
  disposeConditioning,
  type EarlyPruningResult,
  gatherConditioning,
  type KeepRule,
  sampleWithEarlyPruning,
} from '@prfl/reward';
import {
  type Conditioning,
  seededNoise,
  type LatentVideo,
  type Schedule,
  type Scheduler,
  stepIndex,
  type Timestep,
} from '@prfl/tensor';
import { gatherSolverState } from '@prfl/schedulers';
import { throwIfInterrupted } from '../interrupt.js';

/** What the sampling of one prompt's seeds needs; `dispose` frees the noise and the text embeddings. */
export interface SeedSampling {
  models: Pick<EmbeddedModels, 'dit' | 'textEncoder' | 'vae'>;
  scheduler: Scheduler;
  schedule: Schedule;
  /** The initial noise of every seed, [N, F', H', W', C]. */
  noise: LatentVideo;
  /** The prompt's text embedding per seed (what the DiT and the PAVRM read). */
  conditioning: Conditioning;
  /** The empty prompt's per seed: the unconditional branch of guidance. */
  negative: Conditioning;
  guidance: number;
  /** DiT evaluations per seed and step: 2 with guidance, 1 without (guidance 1). */
  evaluationsPerStep: number;
  dispose(): void;
}

/** Reports the steps done and how many seeds are still being sampled. */
export type StepListener = (stepsDone: number, live: number) => void;

/**
 * The noise (seed i draws `${seed}-${i}`, as generate and generateJudged do), the schedule and the text
 * conditioning of N seeds of `prompt`.
 */
export function prepareSampling(
  models: Pick<EmbeddedModels, 'dit' | 'textEncoder' | 'vae' | 'manifest'>,
  options: { prompt: string; seeds: readonly string[]; steps: number; guidance: number; shift: number },
): SeedSampling {
  const { frames, height, width } = models.manifest.world;
  // The pipeline supplies generate's scheduler and schedule options, so both commands sample alike.
  const pipeline = new WanPipeline({
    model: models.dit,
    textEncoder: models.textEncoder,
    vae: models.vae,
    scheduleOptions: { shift: options.shift },
  });
  const shape = models.vae.latentShape(frames, height, width);
  const n = options.seeds.length;
  const noise = seededNoise(options.seeds, shape) as LatentVideo;
  const cond = models.textEncoder.encode(new Array<string>(n).fill(options.prompt));
  const uncond = models.textEncoder.encode(new Array<string>(n).fill(''));
  tf.dispose([cond.mask, uncond.mask]);
  return {
    models,
    scheduler: pipeline.scheduler,
    schedule: pipeline.scheduler.schedule(options.steps, pipeline.scheduleOptions),
    noise,
    conditioning: { text: cond.text },
    negative: { text: uncond.text },
    guidance: options.guidance,
    evaluationsPerStep: options.guidance === 1 ? 1 : 2,
    dispose: () => tf.dispose([noise, cond.text, uncond.text]),
  };
}

/**
 * Samples every seed with early pruning: after `pruneAfter` steps the PAVRM scores each seed's latent at
 * the timestep it has reached, `keep` says which survive, and only they run the remaining steps.
 * The caller disposes `samples` of the result.
 */
export async function sampleWithPruning(
  s: SeedSampling,
  options: {
    reward: NonNullable<EmbeddedModels['reward']>;
    pruneAfter: number;
    keep: KeepRule;
    signal?: AbortSignal;
    onStep?: StepListener;
  },
): Promise<EarlyPruningResult> {
  const { scheduler, schedule, guidance } = s;
  const n = s.noise.shape[0];
  let rows = Array.from({ length: n }, (_, i) => i);
  let state = scheduler.initialState(schedule);
  let batched = guidance === 1 ? undefined : batchConditioning(s.conditioning, s.negative);
  const freeBatched = () => {
    if (batched !== undefined) tf.dispose(batched as unknown as tf.TensorContainer);
  };
  try {
    return await sampleWithEarlyPruning({
      reward: options.reward,
      initial: s.noise,
      conditioning: s.conditioning,
      numSteps: schedule.numSteps,
      timestepAfter: (done) => schedule.timesteps[done] as Timestep,
      pruneAfter: options.pruneAfter,
      keep: options.keep,
      evaluationsPerStep: s.evaluationsPerStep,
      step: ({ sample, index, candidates, conditioning }) => {
        throwIfInterrupted(options.signal);
        if (candidates.length !== rows.length || candidates.some((c, i) => c !== rows[i])) {
          // Seeds were dropped: the survivors keep their rows of the solver state and of the guidance batch.
          const survivors = gatherSolverState(
            state,
            candidates.map((c) => rows.indexOf(c)),
            rows.length,
          );
          scheduler.disposeState(state);
          state = survivors;
          if (batched !== undefined) {
            freeBatched();
            const negative = gatherConditioning(s.negative, candidates);
            batched = batchConditioning(conditioning, negative);
            disposeConditioning(negative);
          }
          rows = [...candidates];
        }
        const t = schedule.timesteps[index] as Timestep;
        const v = tf.tidy(() =>
          guidedVelocity(
            s.models.dit,
            sample,
            new Array<Timestep>(rows.length).fill(t),
            conditioning,
            batched,
            guidance,
          ),
        );
        let next: { sample: LatentVideo; state: unknown };
        try {
          next = scheduler.step({
            schedule,
            state,
            index: stepIndex(index, schedule.numSteps),
            sample,
            modelOutput: v,
          });
        } finally {
          v.dispose();
        }
        scheduler.disposeState(state);
        state = next.state;
        options.onStep?.(index + 1, rows.length);
        return next.sample;
      },
    });
  } finally {
    scheduler.disposeState(state);
    freeBatched();
  }
}

/** Samples every seed to the end, without pruning. The caller disposes the latents. */
export async function sampleWithoutPruning(
  s: SeedSampling,
  options: { signal?: AbortSignal; onStep?: StepListener } = {},
): Promise<LatentVideo> {
  const n = s.noise.shape[0];
  const { latents } = await sampleLatents({
    model: s.models.dit,
    scheduler: s.scheduler,
    schedule: s.schedule,
    initial: s.noise,
    conditioning: s.conditioning,
    ...(s.guidance === 1 ? {} : { negative: s.negative }),
    guidanceScale: s.guidance,
    onProgress: (p) => {
      throwIfInterrupted(options.signal);
      options.onStep?.(p.step, n);
    },
  });
  return latents;
}
