/**
 * Wan2.1's image-to-video condition (wan/image2video.py): the generator reads 16 noisy channels plus
 * 4 + 16 condition channels = 36.
 * - The mask: a pixel-frame mask (1 for given frames; i2v: only the first) whose first entry is repeated
 *   4 times, then grouped by 4 into the latent frames, giving 4 channels per latent frame: for i2v, latent
 *   frame 0 is all ones and every later one all zeros.
 * - The latent: the VAE encoding (normalised) of the first frame followed by F - 1 black (zero) frames.
 * Both, concatenated on channels (mask first), are `conditioning.image.latent`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, type LatentVideo } from '@prfl/tensor';
import type { WanVAE } from '../vae/model.js';
import { temporalCompression } from '../vae/config.js';

/**
 * The 4-channel latent mask [latentFrames, 4] of a pixel-frame mask of F = 1 + 4 (latentFrames - 1)
 * entries, as Wan builds it: repeat the first entry `temporal` times, then group by `temporal`.
 */
export function latentFrameMask(pixelMask: readonly number[], temporal = 4): number[][] {
  const f = pixelMask.length;
  if (f < 1 || (f - 1) % temporal !== 0) {
    throw new InvalidArgumentError(`pixel mask: expected 1 + ${temporal}k frames, got ${f}`);
  }
  const ext = [...new Array<number>(temporal).fill(pixelMask[0] as number), ...pixelMask.slice(1)];
  const out: number[][] = [];
  for (let i = 0; i < ext.length; i += temporal) out.push(ext.slice(i, i + temporal));
  return out;
}

/** The i2v mask as a tensor [B, F', H', W', 4]: latent frame 0 ones, the others zeros. */
export function firstFrameMask(
  batch: number,
  latentFrames: number,
  height: number,
  width: number,
  temporal = 4,
): LatentVideo {
  const frames = 1 + temporal * (latentFrames - 1);
  const rows = latentFrameMask([1, ...new Array<number>(frames - 1).fill(0)], temporal);
  return tf.tidy(() => {
    const m = tf.tensor(rows.flat(), [1, latentFrames, 1, 1, temporal], 'float32');
    return tf.tile(m, [batch, 1, height, width, 1]) as LatentVideo;
  });
}

/**
 * Wan's i2v condition for `image` (the first frame, [B, H, W, 3] or [B, 1, H, W, 3] in [-1, 1]) and a
 * video of `frames` frames: [B, F', H / 8, W / 8, 4 + C] = [mask, VAE latent of (image, zeros...)].
 */
export function imageToVideoCondition(vae: WanVAE, image: tf.Tensor, frames: number): LatentVideo {
  const ok =
    (image.rank === 4 || (image.rank === 5 && image.shape[1] === 1)) && image.shape[image.rank - 1] === 3;
  if (!(image instanceof tf.Tensor) || !ok) {
    throw new InvalidArgumentError(
      `image: expected the first frame [B, H, W, 3] or [B, 1, H, W, 3] in [-1, 1], got ${image instanceof tf.Tensor ? formatShape(image.shape) : typeof image}`,
    );
  }
  const [b, h, w] = (image.rank === 4
    ? image.shape
    : [image.shape[0], image.shape[2], image.shape[3]]) as number[] as [number, number, number];
  const [lf, lh, lw] = vae.latentShape(frames, h, w);
  const temporal = temporalCompression(vae.config);
  return tf.tidy(() => {
    const first = (image.rank === 4 ? tf.expandDims(image, 1) : image) as tf.Tensor5D;
    const video =
      frames === 1 ? first : (tf.concat([first, tf.zeros([b, frames - 1, h, w, 3])], 1) as tf.Tensor5D);
    const latent = vae.encode(video);
    return tf.concat([firstFrameMask(b, lf, lh, lw, temporal), latent], 4) as LatentVideo;
  });
}
