/**
 * Writes the models in the layout `loadEmbedded` reads (see ../embedded.ts): every weights file
 * atomically, manifest.json last, so a folder is never loadable half-written.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { saveTextEncoder, saveWanDiT, saveWanVAE } from '@prfl/models';
import { saveReward } from '@prfl/reward';
import { writeFileAtomic } from '@prfl/tensor';
import {
  DIT_DIR,
  EMBEDDED_FORMAT,
  type EmbeddedManifest,
  type EmbeddedModels,
  MANIFEST_FILE,
  PAVRM_DIR,
  TEXT_ENCODER_FILE,
  VAE_FILE,
} from '../embedded.js';

export interface SaveEmbeddedOptions {
  /**
   * Which of the PAVRM's backbone weights are stored: 'trainable' (default: its K blocks; its frozen
   * embeddings are rebuilt from the folder's DiT when loaded) or 'all' (the embeddings too), which a
   * folder whose DiT was fine-tuned after the PAVRM was trained needs, so that the reward stays the one
   * that was trained.
   */
  rewardBackbone?: 'trainable' | 'all';
}

/** Saves the models into `dir` (created); `manifest` without its format, which is set here. */
export async function saveEmbedded(
  models: Omit<EmbeddedModels, 'manifest'> & Required<Pick<EmbeddedModels, 'reward'>>,
  dir: string,
  manifest: Omit<EmbeddedManifest, 'format'>,
  options: SaveEmbeddedOptions = {},
): Promise<EmbeddedManifest> {
  await mkdir(dir, { recursive: true });
  await saveWanVAE(models.vae, path.join(dir, VAE_FILE));
  await saveTextEncoder(models.textEncoder, path.join(dir, TEXT_ENCODER_FILE));
  await saveWanDiT(models.dit, path.join(dir, DIT_DIR));
  // The reward's embeddings are the DiT's own (frozen copies): by default only its trained blocks are stored.
  await saveReward(models.reward, path.join(dir, PAVRM_DIR), {
    backbone: options.rewardBackbone ?? 'trainable',
  });
  const full: EmbeddedManifest = { format: EMBEDDED_FORMAT, ...manifest };
  await writeFileAtomic(path.join(dir, MANIFEST_FILE), async (write) => {
    await write(new TextEncoder().encode(`${JSON.stringify(full, null, 2)}\n`));
  });
  return full;
}
