/**
 * The shipped models: one call loads the VAE, the text encoder, the DiT and the PAVRM from the package's
 * weights/ folder, in Node (read from disk) and in browsers (fetched next to the module), on whatever
 * tfjs backend is active. Each file is in its model's native layout, so each can also be loaded alone:
 *
 *   weights/manifest.json                           what was trained, how, and its measured quality
 *   weights/vae.safetensors                         WanVAE (config and latent statistics in the metadata)
 *   weights/text_encoder.safetensors                TransformerTextEncoder (tokenizer in the metadata)
 *   weights/dit/config.json                         the DiT in Wan's layout (WanModel.from_pretrained)
 *   weights/dit/diffusion_pytorch_model.safetensors
 *   weights/pavrm/pavrm.json + its safetensors      the PAVRM head and its copy of the first DiT blocks
 */
import {
  loadTextEncoder,
  loadWanDiTFromBytes,
  loadWanVAE,
  type TransformerTextEncoder,
  type WanDiT,
  type WanVAE,
} from '@prfl/models';
import { loadRewardFrom, PAVRM_CONFIG_FILE, type Pavrm } from '@prfl/reward';
import { CorruptFileError, InvalidArgumentError, nodeImport } from '@prfl/tensor';
import type { EmbeddedWorld } from './world.js';

export const MANIFEST_FILE = 'manifest.json';
export const VAE_FILE = 'vae.safetensors';
export const TEXT_ENCODER_FILE = 'text_encoder.safetensors';
export const DIT_DIR = 'dit';
export const PAVRM_DIR = 'pavrm';
export const EMBEDDED_FORMAT = 'prfl-embedded/1';

/** What manifest.json holds. */
export interface EmbeddedManifest {
  format: typeof EMBEDDED_FORMAT;
  world: EmbeddedWorld;
  /** How the weights were made: the command, the seed, every stage's options and time. */
  recipe: Record<string, unknown>;
  /** The PAVRM's backbone: this many first DiT blocks. */
  rewardBlocks: number;
  /** Measured quality (the evaluation script's results), when evaluated. */
  quality?: Record<string, unknown>;
}

/** The models, ready to use; dispose them with `disposeEmbedded`. */
export interface EmbeddedModels {
  manifest: EmbeddedManifest;
  vae: WanVAE;
  textEncoder: TransformerTextEncoder;
  dit: WanDiT;
  /** Absent when loaded with `{ reward: false }`. */
  reward?: Pavrm;
}

/** Reads one file of the weights folder by its relative name ('dit/config.json'). */
export type WeightsReader = (name: string) => Promise<Uint8Array>;

export interface LoadEmbeddedOptions {
  /**
   * Where the weights are: a folder path (Node), a URL of the folder (file:, http:, https:), or a reader.
   * Default: the weights/ folder of this package.
   */
  from?: string | URL | WeightsReader;
  /** Load the PAVRM too (default true). */
  reward?: boolean;
  /** Train-ready (`trainable`) variables (default false: frozen, for inference). */
  trainable?: boolean;
}

/** The package's own weights folder, next to dist/. */
export function embeddedWeightsUrl(): URL {
  return new URL('../weights/', import.meta.url);
}

/** A reader for a folder path or URL (file: through node:fs, anything else through fetch). */
export function weightsReader(from: string | URL): WeightsReader {
  const base = from instanceof URL ? from : /^[a-z][a-z0-9+.-]*:\/\//i.test(from) ? new URL(from) : undefined;
  if (base === undefined || base.protocol === 'file:') {
    return async (name) => {
      const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
      const path = await nodeImport<typeof import('node:path')>('node:path');
      const url = await nodeImport<typeof import('node:url')>('node:url');
      const dir = base === undefined ? (from as string) : url.fileURLToPath(base);
      const file = path.join(dir, name);
      try {
        return new Uint8Array(await fs.readFile(file));
      } catch (e) {
        throw new InvalidArgumentError(`loadEmbedded: cannot read ${file}: ${(e as Error).message}`);
      }
    };
  }
  const folder = base.href.endsWith('/') ? base : new URL(`${base.href}/`);
  return async (name) => {
    const url = new URL(name, folder);
    const res = await fetch(url);
    if (!res.ok)
      throw new InvalidArgumentError(`loadEmbedded: ${url.href} answered ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

/** Parses and checks manifest.json. */
export function parseEmbeddedManifest(bytes: Uint8Array): EmbeddedManifest {
  let m: EmbeddedManifest;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as EmbeddedManifest;
  } catch (e) {
    throw new CorruptFileError(`${MANIFEST_FILE}: not UTF-8 JSON (${(e as Error).message})`);
  }
  if (m?.format !== EMBEDDED_FORMAT) {
    throw new InvalidArgumentError(
      `${MANIFEST_FILE}: expected format ${JSON.stringify(EMBEDDED_FORMAT)}, got ${JSON.stringify(m?.format)}`,
    );
  }
  if (!Number.isInteger(m.rewardBlocks) || m.rewardBlocks < 1) {
    throw new CorruptFileError(
      `${MANIFEST_FILE}: rewardBlocks must be a positive integer, got ${String(m.rewardBlocks)}`,
    );
  }
  return m;
}

/** Loads the shipped models (or a folder written by the recipe). */
export async function loadEmbedded(options: LoadEmbeddedOptions = {}): Promise<EmbeddedModels> {
  const from = options.from ?? embeddedWeightsUrl();
  const read = typeof from === 'function' ? from : weightsReader(from);
  const trainable = options.trainable ?? false;
  const manifest = parseEmbeddedManifest(await read(MANIFEST_FILE));
  const made: { dispose(): void }[] = [];
  try {
    const vae = await loadWanVAE(await read(VAE_FILE));
    made.push(vae);
    if (!trainable) for (const v of vae.namedVariables().values()) v.trainable = false;
    const textEncoder = await loadTextEncoder(await read(TEXT_ENCODER_FILE), { trainable });
    made.push(textEncoder);
    const config = new TextDecoder().decode(await read(`${DIT_DIR}/config.json`));
    const dit = await loadWanDiTFromBytes(
      config,
      await read(`${DIT_DIR}/diffusion_pytorch_model.safetensors`),
      {
        trainable,
      },
    );
    made.push(dit);
    const out: EmbeddedModels = { manifest, vae, textEncoder, dit };
    if (options.reward ?? true) {
      const reward = await loadRewardFrom(
        await read(`${PAVRM_DIR}/${PAVRM_CONFIG_FILE}`),
        async (file) => read(`${PAVRM_DIR}/${file}`),
        dit.truncate(manifest.rewardBlocks),
      );
      out.reward = reward;
    }
    return out;
  } catch (e) {
    for (const m of made) m.dispose();
    throw e;
  }
}

/**
 * Frees a PAVRM built on its own backbone (a `dit.truncate(K)` copy, as loadEmbedded and the recipe make
 * them): its head and its backbone's variables. `Pavrm.dispose` alone frees the head only, since a
 * backbone may be shared.
 */
export function disposePavrm(reward: Pavrm): void {
  reward.dispose();
  const backbone = reward.backbone as { dispose?: () => void };
  backbone.dispose?.();
}

/** Frees every model's variables. */
export function disposeEmbedded(models: EmbeddedModels): void {
  if (models.reward !== undefined) disposePavrm(models.reward);
  models.dit.dispose();
  models.textEncoder.dispose();
  models.vae.dispose();
}
