/**
 * The worker-thread half of parallel generation: `judgedGeneratorReplica` builds the text encoder, VAE and
 * DiT from `generatorReplicaRecipe`'s spec, and `generateJudgedBatch` generates, decodes and judges one batch
 * of prompts on them, exactly as `generateJudged` does here. Plain tfjs code, exported from the main entry
 * so that a worker can import it by the package's name; the main-thread half is @prfl/pretrained/parallel.
 */
import type * as tf from '@tensorflow/tfjs-core';
import {
  loadTextEncoder,
  loadWanVAE,
  serializeTextEncoder,
  serializeWanVAE,
  type TransformerTextEncoder,
  type WanDiT,
  type WanVAE,
  wanDiTReplica,
  type WanDiTReplicaSpec,
} from '@prfl/models';
import { InvalidArgumentError, type PackedTensor, packTensor, type ReplicaRecipe } from '@prfl/tensor';
import { type GenerateJudgedOptions, generateJudged, type JudgedVideo } from '../generate-judged.js';

/** The three models a generator replica holds. */
export interface GeneratorModels {
  textEncoder: TransformerTextEncoder;
  dit: WanDiT;
  vae: WanVAE;
}

/** What a worker builds its generator from: the DiT's recipe, and the text encoder and VAE as safetensors. */
export interface GeneratorReplicaSpec {
  dit: WanDiTReplicaSpec;
  textEncoder: Uint8Array;
  vae: Uint8Array;
}

/** The recipe of a worker's copy of `models` (the DiT's weights follow through the pool's shared memory). */
export async function generatorReplicaRecipe(models: GeneratorModels): Promise<ReplicaRecipe> {
  const spec: GeneratorReplicaSpec = {
    dit: models.dit.replicaRecipe().spec as WanDiTReplicaSpec,
    textEncoder: await serializeTextEncoder(models.textEncoder),
    vae: await serializeWanVAE(models.vae),
  };
  return { module: '@prfl/pretrained', export: 'judgedGeneratorReplica', spec };
}

/** A worker's generator: the three models; its variables (the ones the pool keeps in step) are the DiT's. */
export interface GeneratorReplica extends GeneratorModels {
  namedVariables(): ReadonlyMap<string, tf.Variable>;
  dispose(): void;
}

export async function judgedGeneratorReplica(spec: GeneratorReplicaSpec): Promise<GeneratorReplica> {
  if (!(spec?.textEncoder instanceof Uint8Array) || !(spec.vae instanceof Uint8Array)) {
    throw new InvalidArgumentError('judgedGeneratorReplica: expected the spec of generatorReplicaRecipe()');
  }
  const dit = wanDiTReplica(spec.dit) as WanDiT;
  const vae = await loadWanVAE(spec.vae);
  const textEncoder = await loadTextEncoder(spec.textEncoder);
  return {
    dit,
    vae,
    textEncoder,
    namedVariables: () => dit.namedVariables(),
    dispose: () => {
      dit.dispose();
      vae.dispose();
      textEncoder.dispose();
    },
  };
}

/** One batch of a generation, as plain data. */
export type GenerateBatchArgs = Omit<GenerateJudgedOptions, 'model' | 'onProgress' | 'batchSize'>;

export interface GenerateBatchResult {
  latents: PackedTensor;
  text: PackedTensor;
  videos: JudgedVideo[];
}

/** `generateJudged` on one batch of prompts, in a worker, on its replica. */
export async function generateJudgedBatch(
  replica: GeneratorReplica,
  args: GenerateBatchArgs,
): Promise<GenerateBatchResult> {
  const out = await generateJudged(replica, { ...args, batchSize: args.prompts.length });
  try {
    return { latents: packTensor(out.latents), text: packTensor(out.text), videos: out.videos };
  } finally {
    out.latents.dispose();
    out.text.dispose();
  }
}
