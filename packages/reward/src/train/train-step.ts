/**
 * One PAVRM training step (docs/method.md §4), readable top to bottom in `pavrmTrainStep`: draw a noise level per
 * video as the reference does, noise the clean latents, score them, take the BCE (labelled videos) or
 * Bradley-Terry (preference pairs) loss, back-propagate, clip, and make one AdamW update with separate
 * learning rates for the backbone blocks and the head. `pavrmTrainStepParallel` is the same step with the
 * forward and backward (step 4) split over worker threads by videos (@prfl/reward/parallel): the same
 * draws, the shards' gradients summed in a fixed order, one update here.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type AdamW,
  assertShape,
  clipByGlobalNorm,
  type Conditioning,
  type Generator,
  type LatentRewardModel,
  type PairwiseBatch,
  type PointwiseBatch,
  type Sigma,
  type Timestep,
} from '@prfl/tensor';
import { addNoise } from '../forward-process.js';
import { type SigmaSampler, sampleTrainingSigmas } from '../sigma-sampling.js';
import { assertFiniteTensor, assertLabelTargets, assertLatentVideo } from '../validate.js';
import { bceWithLogits, bradleyTerryLoss } from './losses.js';

/** Everything one step reads and updates. `PavrmTrainer` builds and owns it. */
export interface PavrmTrainRun {
  /** The reward model being trained: a Pavrm, or any LatentRewardModel (e.g. the pixel reward). */
  reward: LatentRewardModel;
  /** The variables that receive gradients: trainable ones only (frozen embeddings are left out). */
  variables: readonly tf.Variable[];
  /** AdamW with one parameter group per learning rate ('backbone', 'head'). */
  optimizer: AdamW;
  /** Seeded noise for sigmas and eps; its position is saved in checkpoints. */
  noise: Generator;
  sigmaSampler: SigmaSampler;
  /** Global gradient-norm clip (paper and reference: 1.0); null: no clipping (the norm is still reported). */
  maxGradNorm: number | null;
  /** Optimizer steps taken so far. */
  step: number;
  /** Learning rate of each optimizer group at factor 1, in group order. */
  baseLearningRates: readonly number[];
  /** Factor on the base learning rates at a step (default constant 1, as in the paper). */
  lrSchedule?: (step: number) => number;
}

/** What one step did, for logs and progress callbacks. Plain data. */
export interface PavrmStepMetrics {
  /** The step number after this update (1 for the first). */
  step: number;
  kind: 'pointwise' | 'pairwise';
  batchSize: number;
  loss: number;
  /**
   * Training accuracy of this batch before the update: labelled videos, sigmoid(r) >= 0.5 matches the
   * label; pairs, r_win > r_lose.
   */
  accuracy: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Learning rate of each optimizer group, by group name. */
  lr: Record<string, number>;
  /** The noise levels the batch was trained at. */
  sigmas: number[];
  /** Wall time of the step in milliseconds. */
  ms: number;
}

function isPairwise(batch: PointwiseBatch | PairwiseBatch): batch is PairwiseBatch {
  return 'win' in batch && 'lose' in batch;
}

/** Global L2 norm of a set of gradients, as a number. */
function globalNorm(grads: readonly tf.Tensor[]): number {
  if (grads.length === 0) return 0;
  const norm = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
  const value = norm.dataSync()[0] as number;
  norm.dispose();
  return value;
}

/**
 * A batch after steps 0-3: checked, its noise levels and eps drawn, the learning rates set. What step 4
 * (`pavrmBatchGradients`, here or in each worker on a shard of the videos) reads.
 */
export interface PavrmPreparedBatch {
  kind: 'pointwise' | 'pairwise';
  /** Clean latents [B, F, H, W, C]: the labelled videos, or each pair's preferred one. Not owned. */
  x0: tf.Tensor5D;
  /** Pairs: the dispreferred videos. Not owned. */
  lose?: tf.Tensor5D;
  /** Labelled videos: one target in [0, 1] each. Not owned. */
  labels?: tf.Tensor1D;
  /** One eps per video (a pair shares it). Owned by the step. */
  eps: tf.Tensor5D;
  sigmas: Sigma[];
  timesteps: Timestep[];
  conditioning: Conditioning;
}

/** Step 4's results: the loss, gradients by tfjs variable name, and the logits (kept for the metrics). */
export interface PavrmBatchGradients {
  loss: tf.Scalar;
  grads: tf.NamedTensorMap;
  /** Labelled videos: [logits]; pairs: [logits of the preferred, logits of the other]. */
  scores: tf.Tensor1D[];
}

/**
 * Step 4: forward and loss under the gradient tape. x_sigma = (1 - sigma) x0 + sigma eps, built from the
 * clean latent; a labelled video keeps its clean label at every noise level. The loss is the batch mean
 * times `scale`: a worker's shard of n videos out of B passes n / B, so the shards' gradients add up to
 * the whole batch's.
 */
export function pavrmBatchGradients(
  reward: LatentRewardModel,
  variables: readonly tf.Variable[],
  p: PavrmPreparedBatch,
  scale = 1,
): PavrmBatchGradients {
  let scores: tf.Tensor1D[] = [];
  try {
    const { value, grads } = tf.variableGrads(() => {
      const noised = (x: tf.Tensor5D) => addNoise(x, p.eps, p.sigmas) as tf.Tensor5D;
      if (p.kind === 'pointwise') {
        const logits = reward.score(noised(p.x0), p.timesteps, p.conditioning);
        scores = [tf.keep(logits)];
        return tf.mul(bceWithLogits(logits, p.labels as tf.Tensor1D), scale) as tf.Scalar;
      }
      const rWin = reward.score(noised(p.x0), p.timesteps, p.conditioning);
      const rLose = reward.score(noised(p.lose as tf.Tensor5D), p.timesteps, p.conditioning);
      scores = [tf.keep(rWin), tf.keep(rLose)];
      return tf.mul(bradleyTerryLoss(rWin, rLose), scale) as tf.Scalar;
    }, [...variables]);
    return { loss: value, grads, scores };
  } catch (e) {
    tf.dispose(scores);
    throw e;
  }
}

/** Gradients of step 4 computed elsewhere: by worker threads (@prfl/reward/parallel's startPavrmWorkers). */
export interface PavrmGradientWorkers {
  /** Worker threads (the batch is split into at most this many shards). */
  readonly size: number;
  /** Step 4 on `prepared`, split by videos; gradients keyed by the names of `variables`. */
  gradients(prepared: PavrmPreparedBatch, variables: readonly tf.Variable[]): Promise<PavrmBatchGradients>;
}

/**
 * One PAVRM training step on a batch of labelled videos (pointwise BCE, the paper's default) or of
 * (better, worse) pairs (Bradley-Terry). The batch's tensors are read, not disposed.
 *
 * @throws InvalidArgumentError for latents that are not [B, F, H, W, C], labels that are not one
 *   value in [0, 1] per video (0/1, or soft: the probability of good), pairs of different shapes, or NaN/Inf in the latents.
 */
export function pavrmTrainStep(run: PavrmTrainRun, batch: PointwiseBatch | PairwiseBatch): PavrmStepMetrics {
  const started = performance.now();
  // 0-3. Check the batch, draw the noise levels and eps, set the learning rates.
  const prepared = prepareStep(run, batch);
  // 4. Forward, loss and backward on the whole batch here.
  let computed: PavrmBatchGradients;
  try {
    computed = pavrmBatchGradients(run.reward, run.variables, prepared);
  } catch (e) {
    prepared.eps.dispose();
    throw e;
  }
  // 5-7. Clip, update, metrics.
  return updateStep(run, prepared, computed, started);
}

/**
 * `pavrmTrainStep` with step 4 in worker threads: the same draws in the same order, the forward and
 * backward of each shard of videos on a replica, the gradients summed in shard order, one clip and one
 * update here. Equal to `pavrmTrainStep` up to the order of float additions.
 */
export async function pavrmTrainStepParallel(
  run: PavrmTrainRun,
  batch: PointwiseBatch | PairwiseBatch,
  workers: PavrmGradientWorkers,
): Promise<PavrmStepMetrics> {
  const started = performance.now();
  const prepared = prepareStep(run, batch);
  let computed: PavrmBatchGradients;
  try {
    computed = await workers.gradients(prepared, run.variables);
  } catch (e) {
    prepared.eps.dispose();
    throw e;
  }
  return updateStep(run, prepared, computed, started);
}

/** Steps 0-3 of a training step. */
function prepareStep(run: PavrmTrainRun, batch: PointwiseBatch | PairwiseBatch): PavrmPreparedBatch {
  // 0. Check the batch: clean latents [B, F, H, W, C], finite; labels in [0, 1] per video or pairs of one shape.
  const pairwise = isPairwise(batch);
  const x0 = pairwise ? batch.win : batch.latents;
  assertLatentVideo(pairwise ? 'batch.win' : 'batch.latents', x0);
  const b = x0.shape[0];
  if (pairwise) {
    assertLatentVideo('batch.lose', batch.lose);
    assertShape('batch.lose', batch.lose, x0.shape);
    assertFiniteTensor('batch.win', batch.win);
    assertFiniteTensor('batch.lose', batch.lose);
  } else {
    assertLabelTargets('batch.labels', batch.labels, b);
    assertFiniteTensor('batch.latents', batch.latents);
  }

  // 1. One noise level per video (both videos of a pair share it), drawn as the reference draws training
  //    sigmas: a uniform index on the shift-5 1000-step grid (§3). Timestep = trunc(sigma * 1000).
  const { sigmas, timesteps } = sampleTrainingSigmas(run.noise, b, run.sigmaSampler);

  // 2. One eps ~ N(0, I) per video from the seeded generator (identical on every backend); a pair's two
  //    videos get the same eps, so only their content differs.
  const eps = run.noise.normal<tf.Rank.R5>(x0.shape);

  // 3. Learning rates for this step: the paper keeps them constant (head 1e-5, backbone blocks 1e-6).
  const factor = run.lrSchedule ? run.lrSchedule(run.step) : 1;
  run.baseLearningRates.forEach((lr, group) => {
    run.optimizer.setLearningRate(lr * factor, group);
  });
  return {
    kind: pairwise ? 'pairwise' : 'pointwise',
    x0: x0 as tf.Tensor5D,
    ...(pairwise ? { lose: batch.lose as tf.Tensor5D } : { labels: batch.labels as tf.Tensor1D }),
    eps,
    sigmas: [...sigmas],
    timesteps: [...timesteps],
    conditioning: batch.conditioning,
  };
}

/** Steps 5-7: clip, update, read the metrics; frees eps, the loss, the gradients and the scores. */
function updateStep(
  run: PavrmTrainRun,
  p: PavrmPreparedBatch,
  computed: PavrmBatchGradients,
  started: number,
): PavrmStepMetrics {
  const { loss, grads, scores } = computed;
  // 5. Clip all gradients together to a global L2 norm (the reference clips the DiT's after backward and
  //    calls a no-op clip before it; one global clip over everything trained is what it means).
  const raw = Object.values(grads);
  let update: Record<string, tf.Tensor> = grads;
  let gradNorm: number;
  let lossValue: number;
  let accuracy: number;
  try {
    if (run.maxGradNorm !== null) {
      const clipped = clipByGlobalNorm(grads, run.maxGradNorm);
      gradNorm = clipped.totalNorm;
      update = clipped.grads;
    } else {
      gradNorm = globalNorm(raw);
    }

    // 6. One AdamW update: decoupled weight decay 0.01, each group at its own learning rate. A NaN or Inf
    //    gradient stops here (NonFiniteGradientError) before any weight changes.
    run.optimizer.step(update);
    run.step += 1;

    // 7. Metrics, read back once.
    lossValue = loss.dataSync()[0] as number;
    accuracy = tf.tidy(() => {
      const correct =
        p.kind === 'pairwise'
          ? tf.greater(scores[0] as tf.Tensor, scores[1] as tf.Tensor)
          : tf.equal(tf.greaterEqual(scores[0] as tf.Tensor, 0), tf.greaterEqual(p.labels as tf.Tensor, 0.5));
      return tf.mean(tf.cast(correct, 'float32')).dataSync()[0] as number;
    });
  } finally {
    tf.dispose([loss, p.eps, ...scores, ...raw]);
    if (update !== grads) tf.dispose(Object.values(update));
  }
  const lr: Record<string, number> = {};
  run.optimizer.groups.forEach((g, i) => {
    lr[g.name ?? String(i)] = g.lr;
  });
  return {
    step: run.step,
    kind: p.kind,
    batchSize: p.x0.shape[0],
    loss: lossValue,
    accuracy,
    gradNorm,
    lr,
    sigmas: [...p.sigmas],
    ms: performance.now() - started,
  };
}
