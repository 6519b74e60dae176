/**
 * The worker-thread half of data-parallel PAVRM training: `pavrmReplica` builds a PAVRM from
 * `Pavrm.replicaRecipe()` (the backbone from its own recipe), and `pavrmShardGradients` runs step 4 of the
 * training step on a shard of the batch. Plain tfjs code, exported from the main entry so that a worker
 * can import it by the package's name; the main-thread half is @prfl/reward/parallel.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type Conditioning,
  type FeatureBackbone,
  type FiniteCheck,
  type FlatGradients,
  InvalidArgumentError,
  nodeImport,
  type PackedTensor,
  packGradients,
  packRows,
  packTensor,
  type ReplicaRecipe,
  type Sigma,
  type Timestep,
  type TransferResult,
  transferResult,
  unpackOwned,
  variablesByName,
} from '@prfl/tensor';
import type { Aggregation } from '../model/head-params.js';
import { Pavrm } from '../model/pavrm.js';
import { type PavrmPreparedBatch, pavrmBatchGradients } from '../train/train-step.js';

/** What `Pavrm.replicaRecipe()` records. */
export interface PavrmReplicaSpec {
  backbone: ReplicaRecipe;
  options: {
    blocks: number;
    aggregation: Aggregation;
    numHeads: number;
    hidden: number[];
    checkFinite: FiniteCheck;
  };
}

/** Builds the PAVRM a recipe describes (its backbone through the backbone's recipe). */
export async function pavrmReplica(spec: PavrmReplicaSpec): Promise<Pavrm> {
  const recipe = spec?.backbone;
  if (typeof recipe?.module !== 'string' || typeof recipe.export !== 'string') {
    throw new InvalidArgumentError('pavrmReplica: expected the spec of Pavrm.replicaRecipe()');
  }
  const module = await nodeImport<Record<string, unknown>>(recipe.module);
  const make = module[recipe.export];
  if (typeof make !== 'function') {
    throw new InvalidArgumentError(
      `pavrmReplica: ${recipe.module} has no function export '${recipe.export}'`,
    );
  }
  const backbone = (await make(recipe.spec)) as FeatureBackbone;
  return new Pavrm(backbone, spec.options);
}

/** One shard of a prepared batch, as plain data (see `pavrmShardGradients`). */
export interface PavrmShardArgs {
  kind: 'pointwise' | 'pairwise';
  x0: PackedTensor;
  lose?: PackedTensor;
  labels?: PackedTensor;
  eps: PackedTensor;
  sigmas: number[];
  timesteps: number[];
  text: PackedTensor;
  textMask?: PackedTensor;
  /** The shard's share of the batch (n / B): the loss is the shard's mean times it. */
  scale: number;
  /** Stable names of the variables to differentiate. */
  names: string[];
}

/** A shard's results: its part of the loss, its gradients (flat, in the order of `names`), its logits. */
export interface PavrmShardResult {
  loss: number;
  grads: FlatGradients;
  scores: PackedTensor[];
}

/** The rows [start, end) of a prepared batch as shard arguments. */
export function packPavrmShard(
  p: PavrmPreparedBatch,
  start: number,
  end: number,
  names: string[],
): PavrmShardArgs {
  if (p.conditioning.image !== undefined) {
    throw new InvalidArgumentError('PAVRM workers: image conditioning is not supported (text only)');
  }
  const b = p.x0.shape[0];
  const rows = (t: tf.Tensor): PackedTensor => packRows(t, start, end);
  return {
    kind: p.kind,
    x0: rows(p.x0),
    ...(p.lose === undefined ? {} : { lose: rows(p.lose) }),
    ...(p.labels === undefined ? {} : { labels: rows(p.labels) }),
    eps: rows(p.eps),
    sigmas: p.sigmas.slice(start, end),
    timesteps: p.timesteps.slice(start, end),
    text: rows(p.conditioning.text),
    ...(p.conditioning.textMask === undefined ? {} : { textMask: rows(p.conditioning.textMask) }),
    scale: (end - start) / b,
    names,
  };
}

/** Step 4 of the PAVRM training step on one shard, in a worker, on its replica (the gradients move, not copied). */
export function pavrmShardGradients(replica: Pavrm, args: PavrmShardArgs): TransferResult<PavrmShardResult> {
  const variables = variablesByName(replica, args.names, 'pavrmShardGradients');
  // What trains is the main thread's choice: a fresh replica's own flags (frozen embeddings, say) must not
  // make tfjs drop a gradient the main thread asked for.
  for (const v of variables) v.trainable = true;
  const owned: tf.Tensor[] = [];
  const take = <T extends tf.Tensor>(p: PackedTensor): T => unpackOwned<T>(p, owned);
  try {
    const conditioning: Conditioning = {
      text: take<tf.Tensor3D>(args.text),
      ...(args.textMask === undefined ? {} : { textMask: take<tf.Tensor2D>(args.textMask) }),
    };
    const prepared: PavrmPreparedBatch = {
      kind: args.kind,
      x0: take<tf.Tensor5D>(args.x0),
      ...(args.lose === undefined ? {} : { lose: take<tf.Tensor5D>(args.lose) }),
      ...(args.labels === undefined ? {} : { labels: take<tf.Tensor1D>(args.labels) }),
      eps: take<tf.Tensor5D>(args.eps),
      sigmas: args.sigmas as Sigma[],
      timesteps: args.timesteps as Timestep[],
      conditioning,
    };
    const { loss, grads, scores } = pavrmBatchGradients(replica, variables, prepared, args.scale);
    owned.push(loss, ...scores, ...Object.values(grads));
    const flat = packGradients(grads, variables);
    return transferResult(
      { loss: loss.dataSync()[0] as number, grads: flat, scores: scores.map(packTensor) },
      [flat.values.buffer as ArrayBuffer],
    );
  } finally {
    tf.dispose(owned);
  }
}
