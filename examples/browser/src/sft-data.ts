/**
 * The SFT term's data, as `goodClipData` of @prfl/pretrained makes it (the same clips for the same seed):
 * good-motion clips of the world's training prompts, rendered in the page, encoded by the VAE on its
 * backend, with their prompts' text embeddings on the main backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { renderClips, sampleWorldClips } from '@prfl/pretrained';
import type { LatentVideo } from '@prfl/tensor';
import { onBackend, type StartedBackend, toBackend } from './backend.js';
import type { ChainModels } from './chain.js';
import { yieldToBrowser } from './yield.js';

export interface SftData {
  /** Normalised latents [N, F', H', W', C] and text embeddings [N, L, D], on the main backend. */
  latents: LatentVideo;
  text: tf.Tensor3D;
}

export async function sftClips(
  models: ChainModels,
  backend: StartedBackend,
  count: number,
  seed: number,
): Promise<SftData> {
  const specs = sampleWorldClips(models.manifest.world, {
    side: 'train',
    count,
    seed: `${seed}/finetune-clips`,
    motionDefectRate: 0,
  });
  const parts: LatentVideo[] = [];
  try {
    for (let i = 0; i < specs.length; i += 8) {
      const chunk = specs.slice(i, i + 8);
      parts.push(
        await onBackend(backend.vae, backend.active, () =>
          tf.tidy(() => models.vae.encode(renderClips(chunk))),
        ),
      );
      await yieldToBrowser();
    }
    const all = await onBackend(backend.vae, backend.active, () => tf.concat(parts, 0) as LatentVideo);
    const latents = await toBackend(all, backend.active);
    all.dispose();
    const { text, mask } = models.textEncoder.encode(specs.map((s) => s.prompt));
    mask.dispose();
    return { latents, text };
  } finally {
    tf.dispose(parts);
  }
}
