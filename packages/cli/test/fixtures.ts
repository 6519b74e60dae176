/** Tiny random models saved in the embedded layout, and a temp folder per test file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TransformerTextEncoder, WanDiT, WanVAE } from '@prfl/models';
import { disposeEmbedded, EMBEDDED_WORLD } from '@prfl/pretrained';
import { saveEmbedded, worldTokenizer } from '@prfl/pretrained/recipe';
import { Pavrm } from '@prfl/reward';
import { initBackend } from '@prfl/tensor';

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(PACKAGE_DIR, 'dist', 'bin.js');

/** A fresh temp folder and its remover. */
export function tempDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `prfl-cli-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Saves tiny random embedded models (VAE 'test', 2-block DiT, 1-block PAVRM) into `dir`. */
export async function saveTinyModels(dir: string): Promise<void> {
  await initBackend({ backend: 'wasm' });
  const vae = new WanVAE('test', { seed: 1 });
  const textEncoder = new TransformerTextEncoder({ tokenizer: worldTokenizer(EMBEDDED_WORLD), seed: 2 });
  const dit = new WanDiT({ numLayers: 2, inDim: 4, outDim: 4 }, { base: 'tiny', seed: 3 });
  const reward = new Pavrm(dit.truncate(1), { hidden: [8], seed: 4 });
  await saveEmbedded({ vae, textEncoder, dit, reward }, dir, {
    world: EMBEDDED_WORLD,
    recipe: { command: 'cli test' },
    rewardBlocks: 1,
  });
  disposeEmbedded({ manifest: undefined as never, vae, textEncoder, dit, reward });
}
