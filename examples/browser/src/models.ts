/**
 * The shipped models of @prfl/pretrained, fetched from weights/ next to the page (the Vite plugin in
 * assets-plugin.ts serves the package's folder): the text encoder, the DiT and the PAVRM on the main
 * backend, the VAE on its own backend when that differs (see backend.ts). Every model is frozen; the
 * fine-tuning marks the DiT's variables trainable while it runs.
 */
import { loadWanVAE } from '@prfl/models';
import { loadEmbedded, VAE_FILE, type WeightsReader, weightsReader } from '@prfl/pretrained';
import { onBackend, type StartedBackend } from './backend.js';
import type { ChainModels } from './chain.js';

/** A reader of weights/ that fetches each file once. */
function cachedReader(read: WeightsReader): WeightsReader {
  const cache = new Map<string, Promise<Uint8Array>>();
  return (name) => {
    let bytes = cache.get(name);
    if (bytes === undefined) {
      bytes = read(name);
      cache.set(name, bytes);
    }
    return bytes;
  };
}

export async function loadModels(backend: StartedBackend): Promise<ChainModels> {
  const read = cachedReader(weightsReader(new URL('weights/', document.baseURI)));
  const models = await loadEmbedded({ from: read });
  if (models.reward === undefined) throw new Error('the weights folder has no PAVRM (weights/pavrm/)');
  if (backend.vae === backend.active) return models as ChainModels;
  models.vae.dispose();
  const vae = await onBackend(backend.vae, backend.active, async () => loadWanVAE(await read(VAE_FILE)));
  for (const v of vae.namedVariables().values()) v.trainable = false;
  return { ...models, vae } as ChainModels;
}
