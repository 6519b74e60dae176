/**
 * The contracts @prfl/refl adds to @prfl/tensor's (VelocityModel, LatentRewardModel, Conditioning): what
 * a training batch holds, where batches come from, and the decoder RGB ReFL back-propagates through.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BatchOptions, Conditioning, LatentVideo } from '@prfl/tensor';

/**
 * One batch of real videos: clean latents x0 [B, F, H, W, C] and their conditioning. The SFT term trains
 * on x0; the reward term only takes its shape (the rollout starts from noise of that shape) and the
 * conditioning. A `PointwiseBatch` of @prfl/tensor is one (its labels are not read).
 */
export interface VideoBatch {
  ids?: readonly string[];
  latents: LatentVideo;
  conditioning: Conditioning;
}

/**
 * Where training videos come from. Any `PreferenceSource<PointwiseBatch>` qualifies; the order is a
 * function of (seed, epoch), so a resumed run sees the same batches.
 */
export interface VideoSource<B extends VideoBatch = VideoBatch> {
  readonly size: number;
  batches(options: BatchOptions): AsyncIterable<B>;
}

/**
 * Latents -> frames, differentiable: what RGB ReFL back-propagates its pixel reward through (docs/method.md
 * section 6). @prfl/models' WanVAE is one: `decode(latents)` -> [B, 1 + 4 (F - 1), 8 H, 8 W, 3] in
 * [-1, 1]. The decoder is frozen: RGB ReFL never passes its variables to the gradient.
 */
export interface LatentDecoder {
  decode(latents: LatentVideo): tf.Tensor5D;
}
