/**
 * Training the VAE: loss = reconstruction + beta * KL, one AdamW step, and a small loop with progress.
 *
 * Both terms are means, so beta does not depend on the clip size:
 *   reconstruction = mean |x_hat - x| (L1) or mean (x_hat - x)^2 (MSE) over every pixel value,
 *   KL = mean over latent elements of 0.5 (mu^2 + sigma^2 - 1 - log sigma^2), the KL divergence of the
 *        posterior N(mu, sigma^2) from N(0, 1) per element,
 * with x_hat the decoder's (unclamped) output for z = mu + sigma eps, log sigma^2 clamped to [-30, 20]
 * as Wan does when sampling. The latent statistics (normalisation) play no part in training.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  type AdamWOptions,
  assertFiniteInRange,
  clipByGlobalNorm,
  formatShape,
  Generator,
  InvalidArgumentError,
} from '@prfl/tensor';
import type { WanVAE } from './model.js';

export type ReconstructionLoss = 'l1' | 'mse';

export interface VAELossOptions {
  /** Weight of the KL term (default 1e-4). */
  beta?: number;
  /** 'l1' (default) or 'mse'. */
  reconstruction?: ReconstructionLoss;
  /** eps [B, F', H', W', C] of the reparameterisation; omitted: z = mu (a deterministic autoencoder plus the KL term). */
  noise?: tf.Tensor;
}

/** The loss and its two terms (scalars; the caller disposes them). */
export interface VAELossTerms {
  loss: tf.Scalar;
  reconstruction: tf.Scalar;
  kl: tf.Scalar;
}

/** mean over elements of 0.5 (mu^2 + exp(logvar) - 1 - logvar): KL(N(mu, sigma^2) || N(0, 1)) per element. */
export function klDivergence(mean: tf.Tensor, logvar: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () =>
      tf.mul(tf.mean(tf.sub(tf.sub(tf.add(tf.square(mean), tf.exp(logvar)), 1), logvar)), 0.5) as tf.Scalar,
  );
}

/** mean |a - b| or mean (a - b)^2. */
export function reconstructionLoss(
  prediction: tf.Tensor,
  target: tf.Tensor,
  kind: ReconstructionLoss = 'l1',
): tf.Scalar {
  if (kind !== 'l1' && kind !== 'mse') {
    throw new InvalidArgumentError(`reconstruction: expected 'l1' or 'mse', got ${JSON.stringify(kind)}`);
  }
  return tf.tidy(() => {
    const d = tf.sub(prediction, target);
    return (kind === 'l1' ? tf.mean(tf.abs(d)) : tf.mean(tf.square(d))) as tf.Scalar;
  });
}

/** The VAE loss of a batch of videos [B, F, H, W, 3] in [-1, 1]. Differentiable in the VAE's variables. */
export function vaeLoss(vae: WanVAE, video: tf.Tensor5D, options: VAELossOptions = {}): VAELossTerms {
  const beta = options.beta ?? 1e-4;
  assertFiniteInRange('vaeLoss: beta', beta, 0);
  const kind = options.reconstruction ?? 'l1';
  const [loss, reconstruction, kl] = tf.tidy(() => {
    const { mean, logvar } = vae.encodeMoments(video);
    let z: tf.Tensor5D = mean;
    if (options.noise !== undefined) {
      if (options.noise.shape.join() !== mean.shape.join()) {
        throw new InvalidArgumentError(
          `vaeLoss: noise must have the latent's shape ${formatShape(mean.shape)}, got ${formatShape(options.noise.shape)}`,
        );
      }
      z = tf.add(mean, tf.mul(tf.exp(tf.mul(tf.clipByValue(logvar, -30, 20), 0.5)), options.noise));
    }
    const rec = reconstructionLoss(vae.decodeRaw(z), video, kind);
    const k = klDivergence(mean, logvar);
    return [tf.add(rec, tf.mul(k, beta)) as tf.Scalar, rec, k];
  });
  return { loss, reconstruction, kl };
}

export interface VAETrainStepOptions extends Omit<VAELossOptions, 'noise'> {
  /** Draws the reparameterisation noise; omitted: z = mu. */
  generator?: Generator;
  /** Clip the gradients' global L2 norm to this value (default: no clipping). */
  maxGradNorm?: number;
}

/** What one step did, as numbers. */
export interface VAETrainStepResult {
  loss: number;
  reconstruction: number;
  kl: number;
  /** Global L2 norm of the gradients before clipping (only with maxGradNorm). */
  gradNorm?: number;
}

/**
 * One optimisation step on a batch of videos: gradients of `vaeLoss` for every trainable variable of the
 * VAE, optional global-norm clipping, one AdamW update. Leaves no tensors behind.
 */
export async function vaeTrainStep(
  vae: WanVAE,
  optimizer: AdamW,
  video: tf.Tensor5D,
  options: VAETrainStepOptions = {},
): Promise<VAETrainStepResult> {
  const vars = vae.trainableVariables();
  if (vars.length === 0) throw new InvalidArgumentError('vaeTrainStep: the VAE has no trainable variables');
  let noise: tf.Tensor | undefined;
  if (options.generator !== undefined) {
    const [b, f, h, w] = video.shape;
    noise = options.generator.normal([b, ...vae.latentShape(f, h, w)]);
  }
  let terms: VAELossTerms | undefined;
  const lossOptions: VAELossOptions = { ...options, ...(noise !== undefined ? { noise } : {}) };
  const { value, grads } = tf.variableGrads(() => {
    terms = vaeLoss(vae, video, lossOptions);
    // The forward runs in a tidy that keeps only the returned loss; keep the two terms for reporting.
    tf.keep(terms.reconstruction);
    tf.keep(terms.kl);
    return terms.loss;
  }, vars);
  const t = terms as VAELossTerms;
  let gradNorm: number | undefined;
  try {
    if (options.maxGradNorm !== undefined) {
      const clipped = clipByGlobalNorm(grads, options.maxGradNorm);
      gradNorm = clipped.totalNorm;
      try {
        optimizer.step(clipped.grads);
      } finally {
        tf.dispose(Object.values(clipped.grads));
      }
    } else {
      optimizer.step(grads);
    }
    const [loss, reconstruction, kl] = await Promise.all([
      value.data(),
      t.reconstruction.data(),
      t.kl.data(),
    ]);
    return {
      loss: loss[0] as number,
      reconstruction: reconstruction[0] as number,
      kl: kl[0] as number,
      ...(gradNorm !== undefined ? { gradNorm } : {}),
    };
  } finally {
    tf.dispose([value, t.loss, t.reconstruction, t.kl, ...Object.values(grads)]);
    if (noise !== undefined) noise.dispose();
  }
}

/** Progress of `trainVAE`, after every step. */
export interface VAETrainProgress extends VAETrainStepResult {
  /** 1-based step just done. */
  step: number;
  total: number;
  elapsedMs: number;
}

export interface TrainVAEOptions extends Omit<VAETrainStepOptions, 'generator'> {
  steps: number;
  /**
   * The batch for a step, [B, F, H, W, 3] in [-1, 1]: a function of the 0-based step (may be async) or an
   * iterable cycled through. `trainVAE` disposes each batch after its step unless `keepBatches`.
   */
  data: ((step: number) => tf.Tensor5D | Promise<tf.Tensor5D>) | Iterable<tf.Tensor5D>;
  /** Do not dispose the batches (they belong to the caller). Default: true for an iterable, false for a function. */
  keepBatches?: boolean;
  /** AdamW options (default lr 1e-3, weight decay 0) or an optimizer to continue with. */
  optimizer?: AdamW | AdamWOptions;
  /** Seed of the reparameterisation noise (default 0); null trains with z = mu. */
  seed?: number | string | null;
  onProgress?: (p: VAETrainProgress) => void | Promise<void>;
}

/** What `trainVAE` returns: the per-step history and the optimizer (to continue or save). */
export interface TrainVAEResult {
  history: VAETrainProgress[];
  optimizer: AdamW;
}

/**
 * A small training loop: `steps` AdamW steps of `vaeLoss` over the batches of `data`, calling
 * `onProgress` after each. The caller owns the returned optimizer (dispose it when done).
 */
export async function trainVAE(vae: WanVAE, options: TrainVAEOptions): Promise<TrainVAEResult> {
  const { steps, data } = options;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new InvalidArgumentError(`trainVAE: steps must be a positive integer, got ${String(steps)}`);
  }
  const optimizer =
    options.optimizer instanceof AdamW
      ? options.optimizer
      : new AdamW(vae.trainableVariables(), { lr: 1e-3, weightDecay: 0, ...(options.optimizer ?? {}) });
  const generator = options.seed === null ? undefined : new Generator(options.seed ?? 0);
  const isFunction = typeof data === 'function';
  const list = isFunction ? [] : [...(data as Iterable<tf.Tensor5D>)];
  if (!isFunction && list.length === 0) throw new InvalidArgumentError('trainVAE: data holds no batches');
  const keep = options.keepBatches ?? !isFunction;
  const history: VAETrainProgress[] = [];
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    const batch = isFunction
      ? await (data as (s: number) => tf.Tensor5D | Promise<tf.Tensor5D>)(step)
      : (list[step % list.length] as tf.Tensor5D);
    let result: VAETrainStepResult;
    try {
      result = await vaeTrainStep(vae, optimizer, batch, {
        ...(options.beta !== undefined ? { beta: options.beta } : {}),
        ...(options.reconstruction !== undefined ? { reconstruction: options.reconstruction } : {}),
        ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
        ...(generator !== undefined ? { generator } : {}),
      });
    } finally {
      if (!keep) batch.dispose();
    }
    const progress: VAETrainProgress = {
      ...result,
      step: step + 1,
      total: steps,
      elapsedMs: performance.now() - t0,
    };
    history.push(progress);
    await options.onProgress?.(progress);
  }
  return { history, optimizer };
}

/**
 * Per-channel mean and std of the posterior means of `videos` (each [B, F, H, W, 3]): the statistics to
 * normalise latents with (`vae.setLatentStats(mean, std)`), as Wan's tables were measured.
 */
export async function measureLatentStats(
  vae: WanVAE,
  videos: Iterable<tf.Tensor5D>,
): Promise<{ mean: number[]; std: number[] }> {
  const c = vae.latentChannels;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  let count = 0;
  for (const video of videos) {
    const { mean, logvar } = vae.encodeMoments(video);
    const data = await mean.data();
    tf.dispose([mean, logvar]);
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      const ch = i % c;
      sum[ch] = (sum[ch] as number) + v;
      sumSq[ch] = (sumSq[ch] as number) + v * v;
    }
    count += data.length / c;
  }
  if (count === 0) throw new InvalidArgumentError('measureLatentStats: no videos');
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sumSq, (s, i) => Math.sqrt(Math.max(s / count - (mean[i] as number) ** 2, 1e-12)));
  return { mean, std };
}
