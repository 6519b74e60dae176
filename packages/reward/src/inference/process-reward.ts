/**
 * Process reward at inference time: PAVRM reads noisy latents, so candidates can be scored part-way
 * through sampling and the bad seeds abandoned before their remaining steps are paid for (docs/method.md §1, §4:
 * "at any point of the denoising chain"). Two ways to use it:
 *
 * - `pruneByReward` between the steps of your own loop: score the current batch of candidates, keep the
 *   best k (or those above a probability threshold), get the kept latents and conditioning back;
 * - `sampleWithEarlyPruning` runs the loop for you around a velocity-model-agnostic `step` callback and
 *   reports how many model evaluations the pruning avoided.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  InvalidArgumentError,
  type LatentRewardModel,
  type LatentVideo,
  type Timestep,
  type TimestepsLike,
  validateTimesteps,
} from '@prfl/tensor';
import { disposeConditioning as freeConditioning, gatherConditioning } from '../conditioning.js';
import { assertLatentVideo } from '../validate.js';

/** Which candidates survive a pruning point. */
export type KeepRule =
  /** The k highest rewards (ties broken by the lower index). */
  | { topK: number }
  /** Reward probability sigmoid(logit) >= threshold; at least `minKeep` (default 1) best are always kept. */
  | { threshold: number; minKeep?: number };

export interface PruneOptions {
  reward: LatentRewardModel;
  /** The current samples of the candidates, [N, F, H, W, C]. */
  latents: LatentVideo;
  /**
   * The timestep value the samples are at (sigma * 1000): one for all, or one per candidate (an array,
   * a typed array or a 1-D tensor).
   */
  timesteps: TimestepsLike;
  conditioning: Conditioning;
  keep: KeepRule;
}

export interface PruneResult {
  /** Indices (into the given candidates) kept, in their original order. */
  kept: number[];
  dropped: number[];
  /** Reward logits and probabilities of every candidate. */
  logits: number[];
  probabilities: number[];
  /** The kept candidates' latents [K, F, H, W, C] (a new tensor; the caller disposes it). */
  latents: LatentVideo;
  /** The kept candidates' conditioning (new tensors; the caller disposes them). */
  conditioning: Conditioning;
}

function checkKeep(keep: KeepRule): void {
  if (keep !== null && typeof keep === 'object' && 'topK' in keep) {
    if (!Number.isInteger(keep.topK) || keep.topK < 1) {
      throw new InvalidArgumentError(`keep.topK: expected a positive integer, got ${String(keep.topK)}`);
    }
    return;
  }
  if (keep !== null && typeof keep === 'object' && 'threshold' in keep) {
    if (typeof keep.threshold !== 'number' || !(keep.threshold >= 0 && keep.threshold <= 1)) {
      throw new InvalidArgumentError(
        `keep.threshold: expected a probability in [0, 1], got ${String(keep.threshold)}`,
      );
    }
    const m = keep.minKeep ?? 1;
    if (!Number.isInteger(m) || m < 0)
      throw new InvalidArgumentError(`keep.minKeep: expected a non-negative integer, got ${String(m)}`);
    return;
  }
  throw new InvalidArgumentError(
    `keep: expected { topK } or { threshold, minKeep? }, got ${JSON.stringify(keep)}`,
  );
}

/** Which indices a rule keeps, given the logits. */
export function selectByReward(logits: readonly number[], keep: KeepRule): number[] {
  checkKeep(keep);
  const ranked = logits
    .map((_, i) => i)
    .sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  let chosen: number[];
  if ('topK' in keep) chosen = ranked.slice(0, keep.topK);
  else {
    const above = ranked.filter((i) => 1 / (1 + Math.exp(-(logits[i] as number))) >= keep.threshold);
    chosen = above.length >= (keep.minKeep ?? 1) ? above : ranked.slice(0, keep.minKeep ?? 1);
  }
  return chosen.sort((a, b) => a - b);
}

/**
 * Scores the candidates' current (noisy) samples and keeps the best. Nothing given is disposed.
 * @throws InvalidArgumentError for latents that are not [N, F, H, W, C], a timestep count that is neither
 *   1 nor N, or a bad keep rule.
 */
export function pruneByReward(options: PruneOptions): PruneResult {
  const { reward, latents, conditioning, keep } = options;
  assertLatentVideo('latents', latents);
  checkKeep(keep);
  const n = latents.shape[0];
  const timesteps = validateTimesteps('timesteps', options.timesteps, n);
  const logitsTensor = tf.tidy(() => reward.score(latents, timesteps, conditioning));
  const logits = Array.from(logitsTensor.dataSync());
  logitsTensor.dispose();
  const kept = selectByReward(logits, keep);
  const keptSet = new Set(kept);
  return {
    kept,
    dropped: logits.map((_, i) => i).filter((i) => !keptSet.has(i)),
    logits,
    probabilities: logits.map((l) => 1 / (1 + Math.exp(-l))),
    latents: tf.tidy(() => tf.gather(latents, tf.tensor1d(kept, 'int32'))) as LatentVideo,
    conditioning: gatherConditioning(conditioning, kept),
  };
}

/** One sampling step of the live candidates; anything that returns the next samples works. */
export type SamplingStep = (args: {
  /** Samples of the live candidates, [L, F, H, W, C]. */
  sample: LatentVideo;
  /** The step index (0-based) being run. */
  index: number;
  /** Original indices of the live candidates (to pick per-candidate solver state). */
  candidates: readonly number[];
  /** Conditioning of the live candidates. */
  conditioning: Conditioning;
}) => LatentVideo | Promise<LatentVideo>;

export interface EarlyPruningOptions {
  reward: LatentRewardModel;
  /** Starting samples of all N candidates (pure noise for text-to-video), [N, F, H, W, C]. Not disposed. */
  initial: LatentVideo;
  conditioning: Conditioning;
  numSteps: number;
  /** Advances the live candidates by one step and returns new samples (the previous ones are disposed here). */
  step: SamplingStep;
  /**
   * The timestep value of the samples after `stepsDone` steps, what the reward reads: for a schedule
   * whose step i reads `schedule.timesteps[i]`, this is `schedule.timesteps[stepsDone]` (PRFL scores
   * x_{k+1} at t_{k+1}, docs/method.md §5).
   */
  timestepAfter: (stepsDone: number) => Timestep;
  /** Prune after this many steps (or at each of several counts, increasing). */
  pruneAfter: number | readonly number[];
  /** The rule at each pruning point (topK counts among the live candidates). */
  keep: KeepRule;
  /** Generator evaluations per candidate and step (2 with classifier-free guidance). Default 1. */
  evaluationsPerStep?: number;
}

export interface PruningDecision {
  afterStep: number;
  timestep: number;
  /** Original indices scored at this point, their logits and probabilities, and which survived. */
  candidates: number[];
  logits: number[];
  probabilities: number[];
  kept: number[];
  dropped: number[];
}

export interface ComputeReport {
  /** Candidate-steps run, and how many running every candidate to the end would take. */
  candidateSteps: number;
  candidateStepsWithoutPruning: number;
  /** Generator evaluations (candidate-steps x evaluationsPerStep), with and without pruning, and saved. */
  evaluations: number;
  evaluationsWithoutPruning: number;
  evaluationsSaved: number;
  /** evaluationsSaved / evaluationsWithoutPruning. */
  fractionSaved: number;
  /** Reward-model forwards (one per candidate per pruning point): the price of the savings. */
  rewardEvaluations: number;
}

export interface EarlyPruningResult {
  /** Final samples of the surviving candidates, [K, F, H, W, C] (the caller disposes it). */
  samples: LatentVideo;
  /** Original indices of the survivors, in order. */
  candidates: number[];
  decisions: PruningDecision[];
  compute: ComputeReport;
}

/**
 * Runs `numSteps` sampling steps over N candidates, scoring them with the reward after each pruning
 * point and continuing only the kept ones, so dropped seeds cost no further generator evaluations.
 */
export async function sampleWithEarlyPruning(options: EarlyPruningOptions): Promise<EarlyPruningResult> {
  const { reward, initial, numSteps, step, keep } = options;
  assertLatentVideo('initial', initial);
  checkKeep(keep);
  if (!Number.isInteger(numSteps) || numSteps < 1) {
    throw new InvalidArgumentError(`numSteps: expected a positive integer, got ${String(numSteps)}`);
  }
  const points = (
    Array.isArray(options.pruneAfter) ? [...options.pruneAfter] : [options.pruneAfter]
  ) as number[];
  points.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= numSteps || (i > 0 && p <= (points[i - 1] as number))) {
      throw new InvalidArgumentError(
        `pruneAfter: expected increasing step counts in [0, ${numSteps - 1}], got ${JSON.stringify(options.pruneAfter)}`,
      );
    }
  });
  const perStep = options.evaluationsPerStep ?? 1;
  if (!Number.isInteger(perStep) || perStep < 1) {
    throw new InvalidArgumentError(`evaluationsPerStep: expected a positive integer, got ${String(perStep)}`);
  }
  const n = initial.shape[0];
  let candidates = Array.from({ length: n }, (_, i) => i);
  let sample: LatentVideo = initial;
  let conditioning: Conditioning = options.conditioning;
  const owned = () => sample !== initial;
  const decisions: PruningDecision[] = [];
  let candidateSteps = 0;
  let rewardEvaluations = 0;
  const disposeConditioning = (c: Conditioning) => {
    if (c !== options.conditioning) freeConditioning(c);
  };
  try {
    for (let index = 0; index < numSteps; index++) {
      if (points.includes(index)) {
        const t = options.timestepAfter(index);
        const result = pruneByReward({ reward, latents: sample, timesteps: t, conditioning, keep });
        rewardEvaluations += candidates.length;
        decisions.push({
          afterStep: index,
          timestep: t,
          candidates: [...candidates],
          logits: result.logits,
          probabilities: result.probabilities,
          kept: result.kept.map((i) => candidates[i] as number),
          dropped: result.dropped.map((i) => candidates[i] as number),
        });
        if (owned()) sample.dispose();
        disposeConditioning(conditioning);
        sample = result.latents;
        conditioning = result.conditioning;
        candidates = result.kept.map((i) => candidates[i] as number);
      }
      const next = await step({ sample, index, candidates, conditioning });
      assertLatentVideo('step() result', next);
      if (next.shape[0] !== candidates.length) {
        throw new InvalidArgumentError(
          `step() returned ${next.shape[0]} samples for ${candidates.length} live candidates`,
        );
      }
      candidateSteps += candidates.length;
      if (owned() && next !== sample) sample.dispose();
      sample = next;
    }
  } catch (e) {
    if (owned()) sample.dispose();
    disposeConditioning(conditioning);
    throw e;
  }
  disposeConditioning(conditioning);
  const without = n * numSteps;
  const samples = owned() ? sample : (tf.clone(sample) as LatentVideo);
  return {
    samples,
    candidates,
    decisions,
    compute: {
      candidateSteps,
      candidateStepsWithoutPruning: without,
      evaluations: candidateSteps * perStep,
      evaluationsWithoutPruning: without * perStep,
      evaluationsSaved: (without - candidateSteps) * perStep,
      fractionSaved: (without - candidateSteps) / without,
      rewardEvaluations,
    },
  };
}
