/**
 * `prflStep` with steps 2-6 on worker threads (data-parallel PRFL): the same draws here, in the same order;
 * each worker runs the SFT term and the reward term (rollout, taped step k, reward of x_{k+1}) on its
 * shard of the videos (src/parallel/replica.ts); the shards' losses and gradients are summed here in
 * shard order, clamped and settled as prflStep settles its terms, and steps 7-8 (accumulation, the update,
 * the metrics) are prflStep's own. Equal to prflStep up to the order of float additions.
 *
 * For the latent readout (PRFL, SFT, reward-weighted regression) with the generator as its own rollout
 * model and the once-per-window schedule; the RGB ReFL readout, the anchor term, reward normalisation,
 * LoRA and the reference schedule run in one process (refused here by name).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@prfl/tensor';
import type { NoiseLevel } from '@prfl/schedulers';
import { disposeGrads } from './gradients.js';
import type { PrflStepMetrics } from './metrics.js';
import { PhaseClock } from './metrics.js';
import { drawMicroStep, finishMicroStep } from './prfl-step.js';
import type { PrflRun } from './run.js';
import { sampleWeights } from './sample-weights.js';
import { settleTerm, type TermResult } from './term.js';
import type { VideoBatch } from './types.js';
import { checkVideoBatch } from './validate.js';

/** What the workers are handed for one micro-step: the batch after text dropout, and the draws. */
export interface PrflTermsInput {
  x0: tf.Tensor5D;
  conditioning: { text: tf.Tensor3D; textMask?: tf.Tensor2D };
  sft: { levels: NoiseLevel[]; eps: tf.Tensor5D; weights: tf.Tensor1D | null } | null;
  reward: { k: number; noise: tf.Tensor5D } | null;
}

/** A term summed over the shards: the loss as a scalar and the gradients by variable name. */
export interface PrflSummedTerm {
  value: tf.Scalar;
  grads: tf.NamedTensorMap;
}

export interface PrflTermsOutput {
  sft: PrflSummedTerm | null;
  reward: (PrflSummedTerm & { logits: tf.Tensor1D }) | null;
}

/** Steps 2-6 on worker threads (@prfl/refl/parallel's startPrflWorkers). */
export interface PrflGradientWorkers {
  readonly size: number;
  terms(input: PrflTermsInput, run: PrflRun): Promise<PrflTermsOutput>;
}

/** Why a run cannot train on workers, or null when it can. */
export function parallelUnsupported(run: PrflRun): string | null {
  const o = run.options;
  if (run.readout.kind !== 'latent') return "the RGB ReFL readout ('pixel')";
  if (run.anchor !== null) return 'the anchor term';
  if (run.normalizer !== null) return 'reward normalisation';
  if (run.lora !== null) return 'LoRA';
  if (run.rolloutModel !== run.generator) return 'a rollout model other than the generator';
  if (o.updateSchedule === 'reference') return "updateSchedule 'reference'";
  if (run.nullConditioning?.image !== undefined) return 'image conditioning';
  return null;
}

/**
 * torch.clamp on a summed loss: outside [-maxLoss, maxLoss] the loss is clamped and its gradient is zero
 * (the workers return unclamped shares, whose clamps would not add up to the clamp of the sum).
 */
function clampSum(term: PrflSummedTerm, maxLoss: number | null): PrflSummedTerm {
  if (maxLoss === null) return term;
  const v = term.value.dataSync()[0] as number;
  if (Math.abs(v) <= maxLoss || !Number.isFinite(v)) return term;
  const clamped = tf.scalar(Math.sign(v) * maxLoss);
  const zeros: tf.NamedTensorMap = {};
  for (const [k, g] of Object.entries(term.grads)) zeros[k] = tf.zerosLike(g);
  tf.dispose([term.value, ...Object.values(term.grads)]);
  return { value: clamped, grads: zeros };
}

/**
 * One micro-step with steps 2-6 on `workers` (see the file's comment). Same arguments, errors and
 * metrics as `prflStep`; the metrics' phases show the workers' time as 'workers'.
 *
 * @throws InvalidArgumentError for what prflStep refuses, and for a run the workers cannot train.
 */
export async function prflStepParallel(
  run: PrflRun,
  batch: VideoBatch,
  workers: PrflGradientWorkers,
): Promise<PrflStepMetrics> {
  const started = performance.now();
  const unsupported =
    parallelUnsupported(run) ?? (batch?.conditioning?.image !== undefined ? 'image conditioning' : null);
  if (unsupported !== null) {
    throw new InvalidArgumentError(`prflStepParallel: ${unsupported} is not available on worker threads`);
  }
  const o = run.options;
  const clock = new PhaseClock(run.meter);
  checkVideoBatch(batch, run.generator.latentChannels);
  const x0 = batch.latents;
  const microStep = run.microSteps + 1;
  const updatesBefore = run.updates;
  let sft: TermResult | null = null;
  let rwd: TermResult | null = null;
  const owned: tf.Tensor[] = [];
  try {
    // 1. prflStep's draws, in its order: text dropout, the SFT noise levels and eps, k and the noise.
    const { drop, sftLevels, sftEps, k, noise, created } = drawMicroStep(run, batch);
    owned.push(...created);
    const cond = drop.conditioning;
    // Reward-weighted regression's weights need the whole batch (softmax over it): made here.
    const weights = sftEps ? sampleWeights(run, x0, batch.conditioning) : null;
    if (weights) owned.push(weights);

    // 2-6. Both terms on the workers; their sums settle here as prflStep settles its terms.
    const endWorkers = clock.start('workers');
    const out = await workers.terms(
      {
        x0: x0 as tf.Tensor5D,
        conditioning: cond,
        sft: sftEps ? { levels: sftLevels, eps: sftEps as tf.Tensor5D, weights } : null,
        reward: noise ? { k, noise: noise as tf.Tensor5D } : null,
      },
      run,
    );
    endWorkers();
    if (out.reward) owned.push(out.reward.logits);
    try {
      if (out.sft) sft = settleTerm(run, 'sft', clampSum(out.sft, o.maxLoss));
    } catch (e) {
      // The reward term's sums are not settled yet: free them too.
      if (out.reward) tf.dispose([out.reward.value, ...Object.values(out.reward.grads)]);
      throw e;
    }
    if (out.reward) rwd = settleTerm(run, 'reward', clampSum(out.reward, o.maxLoss));

    // 7-8. prflStep's own.
    return finishMicroStep(run, {
      clock,
      sft,
      rwd,
      logits: out.reward?.logits ?? null,
      k,
      sftLevels,
      textDropped: drop.dropped.filter(Boolean).length,
      microStep,
      updatesBefore,
      updateNorm: null,
      started,
    });
  } finally {
    disposeGrads(sft?.grads, rwd?.grads);
    tf.dispose(owned);
  }
}
