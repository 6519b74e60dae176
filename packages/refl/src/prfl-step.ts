/**
 * One micro-step of PRFL (docs/method.md section 5), readable top to bottom in `prflStep`:
 *
 *   1. random draws: text dropout, the SFT noise level and eps, the step k, the rollout's noise;
 *   2. the SFT term, flow-matching MSE ||v(x_sigma, t) - (eps - x0)||^2, under its own tape;
 *   3. the rollout of steps 0..k-1 from pure noise, with no tape;
 *   4. step k under the tape: one generator forward and one scheduler step (UniPC's predictor and
 *      corrector, whose history of earlier outputs is a constant) -> x_{k+1};
 *   5. the frozen reward scores x_{k+1} at t_{k+1} (never x0_hat, never pixels);
 *   6. the hinge lambda * relu(2 - sigmoid(r)), back-propagated to the generator's trainable variables only;
 *   7. accumulation over the window, global-norm clipping, one AdamW update per window.
 *
 * The same loop runs the RGB ReFL baseline (readout 'pixel': x0_hat = x_k - sigma_k v decoded with
 * gradient, scored by a pixel reward; docs/method.md section 6), SFT alone (rewardWeight 0) and
 * reward-weighted regression (sftWeighting 'reward-*').
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  clipByGlobalNorm,
  type LatentRewardModel,
  type LatentVideo,
  stepIndex,
  type Timestep,
  timestep,
} from '@prfl/tensor';
import { type GridNoiseLevel, sampleGridNoiseLevels } from '@prfl/schedulers';
import { sftGrads } from './checkpointing/sft-grads.js';
import { velocityGrads } from './checkpointing/velocity-grads.js';
import { addGrads, disposeGrads, globalNorm } from './gradients.js';
import { sampleStep } from './k-range.js';
import { type PrflStepMetrics, PhaseClock } from './metrics.js';
import { rewardLoss } from './reward-loss.js';
import { batchTimesteps, rolloutTo } from './rollout.js';
import type { PrflRun } from './run.js';
import { sampleWeights } from './sample-weights.js';
import { applyTextDropout, type DroppedConditioning } from './text-dropout.js';
import { clampLoss, settleTerm, type TermResult } from './term.js';
import type { VideoBatch } from './types.js';
import { applyUpdate } from './update.js';
import { checkVideoBatch } from './validate.js';

/**
 * One micro-step on a batch of real videos (read, not disposed). Updates the generator's weights at the
 * end of an accumulation window; returns the step's metrics.
 *
 * @throws InvalidArgumentError for a batch that is not [B, F, H, W, C] latents with [B, L, D] text, or a
 *   null conditioning of another text shape. A NaN/Inf loss or gradient is not an error: the micro-step
 *   is skipped (`metrics.skipped`, `run.skippedSteps`) and no weight changes.
 */
export function prflStep(run: PrflRun, batch: VideoBatch): PrflStepMetrics {
  const started = performance.now();
  const o = run.options;
  const clock = new PhaseClock(run.meter);
  const b = checkVideoBatch(batch, run.generator.latentChannels);
  const x0 = batch.latents;
  const ga = o.accumulationSteps;
  const reference = o.updateSchedule === 'reference';
  const microStep = run.microSteps + 1;
  // The reference numbers its steps from 1 and updates when (step + 1) % GA == 0 (in both sub-steps).
  const referenceBoundary = reference && (microStep + 1) % ga === 0;
  const updatesBefore = run.updates;
  let updateNorm: number | null = null;
  let sft: TermResult | null = null;
  let rwd: TermResult | null = null;
  const owned: tf.Tensor[] = [];

  // Reference schedule, one sub-step: .grad += loss / GA, clip .grad in place, optimizer.step() at a boundary.
  const referenceSubStep = (term: TermResult) => {
    run.window.add(term.grads, 1 / ga);
    updateNorm = o.maxGradNorm === null ? null : run.window.clipInPlace(o.maxGradNorm);
    if (referenceBoundary) {
      const grads = run.window.take('sum');
      clock.measure('update', () => applyUpdate(run, grads));
      disposeGrads(grads);
    }
  };

  try {
    // 1. Random draws, each from its own stream, all before any model runs: text dropout (one draw per
    //    video; the same conditioning feeds both terms), the SFT term's noise level (the reference's
    //    uniform index on the shift-5 1000-step grid) and eps, then k and the rollout's starting noise.
    const { drop, sftLevels, sftEps, k, noise, created } = drawMicroStep(run, batch);
    owned.push(...created);
    const cond = drop.conditioning;

    // 2. The SFT term under its own tape (the reference back-propagates the two terms separately, which
    //    also keeps only one term's activations alive at a time). Reward-weighted regression scales each
    //    video's squared error by a weight from the frozen reward's score of the clean video.
    if (sftEps) {
      // RWR scores each video under its own prompt, not the dropped-out one.
      const weights = sampleWeights(run, x0, batch.conditioning);
      if (weights) owned.push(weights);
      sft = clock.measure('sft', () =>
        settleTerm(
          run,
          'sft',
          sftGrads({
            model: run.generator,
            x0,
            eps: sftEps,
            levels: sftLevels,
            conditioning: cond,
            loss: (perSample) => {
              const mse = weights ? tf.mean(tf.mul(perSample, weights)) : tf.mean(perSample);
              return clampLoss(tf.mul(o.sftWeight, mse) as tf.Scalar, o.maxLoss);
            },
            variables: run.variables,
            checkpointing: o.gradientCheckpointing,
          }),
        ),
      );
      if (reference && sft.finite) referenceSubStep(sft);
    }

    // 3-6. The reward term. `kept` receives what the tape's forward hands out (it runs in a closure).
    const kept: { logits: tf.Tensor | null; anchor: tf.Scalar | null; endBackward: (() => void) | null } = {
      logits: null,
      anchor: null,
      endBackward: null,
    };
    let anchorLoss: number | undefined;
    const schedule = run.schedule;
    const tK = schedule.timesteps[k] as Timestep;
    const tNext = schedule.timesteps[k + 1] as Timestep;
    let closeTaped = () => {};
    if (noise) {
      // 3. Steps 0..k-1 from pure noise without a tape: x_k and the solver state entering step k.
      const rolled = clock.measure('rollout', () =>
        rolloutTo(run.rolloutModel, run.scheduler, schedule, noise, cond, k),
      );
      owned.push(rolled.sample);
      try {
        // The anchor's frozen base velocity at the same input, outside the tape (a constant).
        const baseV = run.anchor
          ? tf.tidy(() => run.anchor?.model.predictVelocity(rolled.sample, batchTimesteps(tK, b), cond))
          : null;
        if (baseV) owned.push(baseV);
        // 4. Step k under the tape: v = generator(x_k, t_k), then the scheduler's step to sigma_{k+1}.
        //    Gradient flows through UniPC's corrector and predictor via v; the earlier outputs in the
        //    state are constants of the rollout. With gradientCheckpointing the generator's forward keeps
        //    only block boundaries and re-runs one block at a time backwards (checkpointing/velocity-grads.ts).
        let endTaped: (() => void) | null = clock.start('taped-step');
        closeTaped = () => {
          endTaped?.();
          endTaped = null;
        };
        const taped = velocityGrads({
          model: run.generator,
          x: rolled.sample,
          timesteps: batchTimesteps(tK, b),
          conditioning: cond,
          variables: run.variables,
          checkpointing: o.gradientCheckpointing,
          loss: (v) => {
            const index = stepIndex(k, schedule.numSteps);
            const args = { schedule, index, sample: rolled.sample, modelOutput: v };
            // PRFL: x_{k+1}. RGB ReFL: the clean estimate x0_hat = x_k - sigma_k v instead.
            const next =
              run.readout.kind === 'latent'
                ? run.scheduler.step({ ...args, state: rolled.state }).sample
                : run.scheduler.predictOriginal(args);
            closeTaped();
            let scored = next;
            let scoredAt = tNext;
            if (run.readout.kind === 'pixel') {
              // RGB ReFL: decode WITH gradient through the frozen decoder (first latent frame, or all).
              const { decoder, frames } = run.readout;
              const latents = frames === 'first' ? (tf.slice(next, [0, 0], [-1, 1]) as LatentVideo) : next;
              scored = clock.measure('decode', () => decoder.decode(latents));
              scoredAt = timestep(0);
            }

            // 5. The frozen reward scores x_{k+1} at t_{k+1} (RGB ReFL: the decoded frames).
            const endReward = clock.start('reward');
            const r = (run.reward as LatentRewardModel).score(scored, batchTimesteps(scoredAt, b), cond);
            kept.logits = tf.keep(r);
            // 6. lambda * relu(2 - sigmoid(r)) (or the chosen form; on running-normalised logits when asked),
            //    plus the optional anchor term.
            const rn = run.normalizer ? run.normalizer.apply(r) : r;
            let loss = rewardLoss(rn, o.rewardLoss, o.rewardWeight, o.hingeTarget);
            if (run.anchor && baseV) {
              const a = tf.mul(run.anchor.weight, tf.mean(tf.square(tf.sub(v, baseV)))) as tf.Scalar;
              kept.anchor = tf.keep(a);
              loss = tf.add(loss, a);
            }
            endReward();
            kept.endBackward = clock.start('backward');
            return clampLoss(loss, o.maxLoss);
          },
        });
        kept.endBackward?.();
        rwd = settleTerm(run, 'reward', taped);
        if (kept.anchor) anchorLoss = kept.anchor.dataSync()[0] as number;
      } finally {
        closeTaped();
        run.scheduler.disposeState(rolled.state);
        if (kept.logits) owned.push(kept.logits);
        if (kept.anchor) owned.push(kept.anchor);
      }
      if (reference && rwd.finite) referenceSubStep(rwd);
    }

    // 7-8. Accumulate, update once per window, and the metrics.
    return finishMicroStep(run, {
      clock,
      sft,
      rwd,
      logits: kept.logits,
      ...(anchorLoss === undefined ? {} : { anchorLoss }),
      k,
      sftLevels,
      textDropped: drop.dropped.filter(Boolean).length,
      microStep,
      updatesBefore,
      updateNorm,
      started,
    });
  } finally {
    disposeGrads(sft?.grads, rwd?.grads);
    tf.dispose(owned);
  }
}

/** Step 1's draws of a micro-step, shared by `prflStep` and `prflStepParallel` (the same draws, in order). */
export interface MicroStepDraws {
  drop: DroppedConditioning;
  sftLevels: GridNoiseLevel[];
  sftEps: tf.Tensor5D | null;
  k: number;
  noise: tf.Tensor5D | null;
  /** The tensors made here (the caller disposes them). */
  created: tf.Tensor[];
}

/** Step 1: text dropout, the SFT term's levels and eps, k and the rollout's starting noise. */
export function drawMicroStep(run: PrflRun, batch: VideoBatch): MicroStepDraws {
  const o = run.options;
  const shape = batch.latents.shape;
  const b = shape[0];
  const withReward = o.rewardWeight > 0;
  const drop = applyTextDropout(batch.conditioning, run.nullConditioning, o.textDropout, run.random.data);
  const created: tf.Tensor[] = [...drop.created];
  const sftLevels =
    o.sftWeight > 0 ? sampleGridNoiseLevels(run.random.sft, b, { shift: o.trainingShift }) : [];
  const sftEps = o.sftWeight > 0 ? run.random.sft.normal<tf.Rank.R5>(shape) : null;
  if (sftEps) created.push(sftEps);
  const k = withReward ? sampleStep(run.random.rollout, run.stepRange) : 0;
  const noise = withReward ? run.random.rollout.normal<tf.Rank.R5>(shape) : null;
  if (noise) created.push(noise);
  return { drop, sftLevels, sftEps, k, noise, created };
}

/** What steps 7-8 of a micro-step read: its terms, draws and bookkeeping. */
export interface MicroStepEnd {
  clock: PhaseClock;
  sft: TermResult | null;
  rwd: TermResult | null;
  /** The reward's logits of x_{k+1} (null without the reward term); the caller disposes them. */
  logits: tf.Tensor | null;
  anchorLoss?: number;
  k: number;
  sftLevels: readonly { sigma: number }[];
  textDropped: number;
  microStep: number;
  updatesBefore: number;
  /** The reference schedule's clipped norm of this micro-step, when it updated (else null). */
  updateNorm: number | null;
  started: number;
}

/**
 * Steps 7-8 of a micro-step (shared by `prflStep` and `prflStepParallel`): accumulate the finite terms'
 * gradients in the window and make one clipped AdamW update per full window (once-per-window schedule),
 * the EMA, the counters, then the metrics read back once. The terms' gradients stay the caller's.
 */
export function finishMicroStep(run: PrflRun, e: MicroStepEnd): PrflStepMetrics {
  const o = run.options;
  const { sft, rwd, clock } = e;
  const withReward = o.rewardWeight > 0;
  let updateNorm = e.updateNorm;
  // 7. Accumulate and update. A micro-step whose loss or gradient is NaN/Inf contributes nothing (the
  //    reference skips such losses); the window then waits for GA finite micro-steps.
  const skipped = (sft !== null && !sft.finite) || (rwd !== null && !rwd.finite);
  if (skipped) run.skippedSteps++;
  if (o.updateSchedule !== 'reference' && !skipped) {
    const micro = addGrads(sft?.grads ?? {}, rwd?.grads ?? {});
    run.window.add(micro);
    disposeGrads(micro);
    if (run.window.count === o.accumulationSteps) {
      // One update per window: the window's mean gradient (= each loss / GA, summed), clipped once.
      const mean = run.window.take('mean');
      const clipped =
        o.maxGradNorm === null
          ? { grads: mean, totalNorm: globalNorm(mean) }
          : clipByGlobalNorm(mean, o.maxGradNorm);
      updateNorm = clipped.totalNorm;
      clock.measure('update', () => applyUpdate(run, clipped.grads));
      disposeGrads(mean, clipped.grads === mean ? null : clipped.grads);
    }
  }
  if (run.ema && run.updates > e.updatesBefore) run.ema.update();
  run.microSteps = e.microStep;

  // 8. Metrics, read back once.
  const logits = e.logits;
  const stats = logits ? rewardStats(logits) : { mean: 0, std: 0, logitMean: 0 };
  if (logits && run.normalizer && !skipped) run.normalizer.observe(logits);
  const sigmas = run.schedule.sigmas;
  const tNext = run.schedule.timesteps[e.k + 1] as Timestep;
  return {
    step: e.microStep,
    updates: run.updates,
    updatesThisStep: run.updates - e.updatesBefore,
    skipped,
    loss: (sft?.loss ?? 0) + (rwd?.loss ?? 0),
    sftLoss: sft ? sft.loss : null,
    rewardLoss: rwd ? rwd.loss - (e.anchorLoss ?? 0) : 0,
    ...(e.anchorLoss !== undefined ? { anchorLoss: e.anchorLoss } : {}),
    reward: stats,
    k: e.k,
    sigma: withReward ? (sigmas[e.k] as number) : 0,
    sigmaNext: withReward ? (sigmas[e.k + 1] as number) : 0,
    rewardTimestep: withReward ? (run.readout.kind === 'latent' ? tNext : 0) : 0,
    sftSigmas: e.sftLevels.map((l) => l.sigma as number),
    textDropped: e.textDropped,
    gradNorm: { sft: sft ? sft.norm : null, reward: rwd ? rwd.norm : 0, update: updateNorm },
    lr: run.optimizer.getLearningRate(),
    phases: clock.phases,
    ms: performance.now() - e.started,
  };
}

/** sigmoid(r)'s batch mean and standard deviation and the mean logit. */
function rewardStats(logits: tf.Tensor): { mean: number; std: number; logitMean: number } {
  const values = tf.tidy(() => {
    const p = tf.sigmoid(logits);
    const { mean, variance } = tf.moments(p);
    return tf.stack([mean, tf.sqrt(variance), tf.mean(logits)]);
  });
  const [mean, std, logitMean] = Array.from(values.dataSync());
  values.dispose();
  return { mean: mean as number, std: std as number, logitMean: logitMean as number };
}
