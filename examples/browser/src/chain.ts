/**
 * N seeds of one prompt denoised together by the embedded DiT, the way `prfl sample` does it (Wan's
 * pipeline: flow UniPC with shift 5, classifier-free guidance against the empty prompt), with the PAVRM
 * reading every seed's noisy latent after every step at the timestep it has reached: the process reward
 * along the chain. At the pruning point the rule keeps some seeds; the others stop, and the DiT
 * evaluations they would have cost are the savings.
 *
 * The same loop as `sampleWithEarlyPruning` of @prfl/reward, written out because the page scores every
 * step (not only the pruning point) and gives the browser a turn after each one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchConditioning, guidedVelocity, WanPipeline } from '@prfl/models';
import type { EmbeddedModels } from '@prfl/pretrained';
import { disposeConditioning, gatherConditioning, type KeepRule, selectByReward } from '@prfl/reward';
import { gatherSolverState } from '@prfl/schedulers';
import {
  type Conditioning,
  type LatentVideo,
  seededNoise,
  stepIndex,
  type Timestep,
  timestep,
} from '@prfl/tensor';
import { yieldToBrowser } from './yield.js';

export type ChainModels = Pick<
  Required<EmbeddedModels>,
  'dit' | 'textEncoder' | 'vae' | 'reward' | 'manifest'
>;

export interface ChainRequest {
  prompt: string;
  /** Seed i's noise is drawn from seeds[i]. */
  seeds: readonly string[];
  steps: number;
  guidance: number;
  /** The schedule's shift (default 5, Wan's and the shipped sampler's). */
  shift?: number;
  /** Prune after this many steps with this rule; absent: every seed is finished. */
  prune?: { afterStep: number; keep: KeepRule };
}

/** Reported after every step. */
export interface ChainProgress {
  stepsDone: number;
  steps: number;
  /** Indices of the seeds still denoising, and their reward probabilities now. */
  live: readonly number[];
  probabilities: readonly number[];
}

export interface ComputeSaved {
  /** Seed-steps run, and how many finishing every seed takes. */
  seedSteps: number;
  seedStepsWithoutPruning: number;
  /** DiT forward passes per seed-step: 2 with guidance (conditional and unconditional), 1 without. */
  ditPerSeedStep: number;
  ditEvaluations: number;
  ditEvaluationsWithoutPruning: number;
  ditEvaluationsSaved: number;
  fractionSaved: number;
  /** PAVRM forwards (one per live seed per step): what the process reward cost. */
  rewardEvaluations: number;
  /** Wall time of the whole chain (denoising and scoring), ms. */
  ms: number;
  /** Mean wall time of one seed-step before the pruning point, and that times the seed-steps saved. */
  msPerSeedStep: number;
  msSavedEstimate: number;
}

export interface ChainResult {
  /** The survivors' clean latents [K, F', H', W', C], in the order of `survivors`. The caller disposes them. */
  latents: LatentVideo;
  survivors: number[];
  /** rewards[seed][j]: sigmoid(PAVRM) of the seed's latent after j + 1 steps; null once it was pruned. */
  rewards: (number | null)[][];
  /** The timestep each column of `rewards` was read at (0 after the last step: the clean latent). */
  timesteps: number[];
  pruned?: { afterStep: number; kept: number[]; dropped: number[] };
  compute: ComputeSaved;
}

const sigmoid = (l: number) => 1 / (1 + Math.exp(-l));

/** Denoises, scores and prunes; `onStep` is called after every step. */
export async function runChain(
  models: ChainModels,
  request: ChainRequest,
  onStep?: (p: ChainProgress) => void,
): Promise<ChainResult> {
  const { dit, textEncoder, vae, reward } = models;
  const { frames, height, width } = models.manifest.world;
  const { steps, guidance, prune } = request;
  const n = request.seeds.length;
  const pipeline = new WanPipeline({
    model: dit,
    textEncoder,
    vae,
    scheduleOptions: { shift: request.shift ?? 5 },
  });
  const scheduler = pipeline.scheduler;
  const schedule = scheduler.schedule(steps, pipeline.scheduleOptions);
  const readAt = Array.from({ length: steps }, (_, i) =>
    i + 1 < steps ? (schedule.timesteps[i + 1] as Timestep) : timestep(0),
  );
  const shape = vae.latentShape(frames, height, width);
  let x = seededNoise(request.seeds, shape) as LatentVideo;
  const cond = textEncoder.encode(new Array<string>(n).fill(request.prompt));
  const uncond = textEncoder.encode(new Array<string>(n).fill(''));
  tf.dispose([cond.mask, uncond.mask]);
  let conditioning: Conditioning = { text: cond.text };
  let negative: Conditioning = { text: uncond.text };
  const perStep = guidance === 1 ? 1 : 2;
  let batched = perStep === 2 ? batchConditioning(conditioning, negative) : undefined;
  let state = scheduler.initialState(schedule);
  let live = Array.from({ length: n }, (_, i) => i);
  let logits: number[] = [];
  const rewards = Array.from({ length: n }, () => new Array<number | null>(steps).fill(null));
  let pruned: ChainResult['pruned'];
  let seedSteps = 0;
  let msBeforePruning = 0;
  const t0 = performance.now();
  try {
    for (let i = 0; i < steps; i++) {
      if (prune !== undefined && i === prune.afterStep) {
        msBeforePruning = performance.now() - t0;
        const keep = selectByReward(logits, prune.keep);
        pruned = {
          afterStep: i,
          kept: keep.map((p) => live[p] as number),
          dropped: live.filter((_, p) => !keep.includes(p)),
        };
        const rows = tf.tensor1d(keep, 'int32');
        const kept = tf.gather(x, rows) as LatentVideo;
        rows.dispose();
        const keptState = gatherSolverState(state, keep, live.length);
        const keptCond = gatherConditioning(conditioning, keep);
        const keptNeg = gatherConditioning(negative, keep);
        x.dispose();
        scheduler.disposeState(state);
        disposeConditioning(conditioning);
        disposeConditioning(negative);
        if (batched !== undefined) disposeConditioning(batched);
        [x, state, conditioning, negative] = [kept, keptState, keptCond, keptNeg];
        batched = perStep === 2 ? batchConditioning(conditioning, negative) : undefined;
        live = pruned.kept;
      }
      const t = schedule.timesteps[i] as Timestep;
      const v = tf.tidy(() =>
        guidedVelocity(dit, x, new Array<Timestep>(live.length).fill(t), conditioning, batched, guidance),
      );
      const next = scheduler.step({
        schedule,
        state,
        index: stepIndex(i, steps),
        sample: x,
        modelOutput: v,
      });
      v.dispose();
      x.dispose();
      scheduler.disposeState(state);
      x = next.sample;
      state = next.state;
      seedSteps += live.length;
      const scored = tf.tidy(() =>
        reward.score(x, new Array<Timestep>(live.length).fill(readAt[i] as Timestep), conditioning),
      );
      logits = Array.from(await scored.data());
      scored.dispose();
      live.forEach((seed, p) => {
        (rewards[seed] as (number | null)[])[i] = sigmoid(logits[p] as number);
      });
      onStep?.({ stepsDone: i + 1, steps, live, probabilities: logits.map(sigmoid) });
      await yieldToBrowser();
    }
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    scheduler.disposeState(state);
    disposeConditioning(conditioning);
    disposeConditioning(negative);
    if (batched !== undefined) disposeConditioning(batched);
  }
  const ms = performance.now() - t0;
  const without = n * steps;
  const msPerSeedStep = pruned === undefined ? ms / without : msBeforePruning / (n * pruned.afterStep);
  return {
    latents: x,
    survivors: live,
    rewards,
    timesteps: readAt.map(Number),
    ...(pruned === undefined ? {} : { pruned }),
    compute: {
      seedSteps,
      seedStepsWithoutPruning: without,
      ditPerSeedStep: perStep,
      ditEvaluations: seedSteps * perStep,
      ditEvaluationsWithoutPruning: without * perStep,
      ditEvaluationsSaved: (without - seedSteps) * perStep,
      fractionSaved: (without - seedSteps) / without,
      rewardEvaluations: seedSteps,
      ms,
      msPerSeedStep,
      msSavedEstimate: msPerSeedStep * (without - seedSteps),
    },
  };
}
