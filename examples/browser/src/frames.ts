/**
 * Latents to pictures: the VAE decodes one video at a time (frames [1, F, H, W, 3] in [-1, 1]) on its
 * own backend and the values become RGBA bytes a canvas can show.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WanVAE } from '@prfl/models';
import type { LatentVideo } from '@prfl/tensor';
import { onBackend, type StartedBackend, toBackend } from './backend.js';
import { yieldToBrowser } from './yield.js';

/** One decoded video: `frames` RGBA images of width x height. */
export interface DecodedVideo {
  frames: number;
  height: number;
  width: number;
  /** frames x height x width x 4 bytes. */
  rgba: Uint8ClampedArray;
}

/** Decodes every video of latents [K, F', H', W', C] (not disposed); `onVideo` after each one. */
export async function decodeVideos(
  vae: WanVAE,
  backend: StartedBackend,
  latents: LatentVideo,
  onVideo?: (done: number, total: number) => void,
): Promise<DecodedVideo[]> {
  const count = latents.shape[0];
  const out: DecodedVideo[] = [];
  const onVae = await toBackend(latents, backend.vae);
  try {
    for (let i = 0; i < count; i++) {
      const bytes = await onBackend(backend.vae, backend.active, () =>
        tf.tidy(() => {
          const one = tf.slice(onVae, [i, 0, 0, 0, 0], [1, -1, -1, -1, -1]) as LatentVideo;
          const rgb = vae.decode(one);
          const alpha = tf.onesLike(tf.slice(rgb, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]));
          const rgba = tf.concat([rgb, alpha], 4);
          return tf.cast(tf.round(tf.mul(tf.add(rgba, 1), 127.5)), 'int32') as tf.Tensor5D;
        }),
      );
      const [, frames, height, width] = bytes.shape;
      const data = await bytes.data();
      bytes.dispose();
      out.push({ frames, height, width, rgba: Uint8ClampedArray.from(data) });
      onVideo?.(i + 1, count);
      await yieldToBrowser();
    }
  } finally {
    onVae.dispose();
  }
  return out;
}
