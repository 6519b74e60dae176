/**
 * @prfl/reward/parallel (Node only): data-parallel PAVRM training over worker threads. With `workers: n`,
 * every step's batch is split by videos into n shards: the first runs in this thread on the PAVRM itself,
 * the others on n - 1 worker threads holding replicas; the gradients are summed in shard order for the one
 * update the trainer makes. Pass the result as PavrmTrainer's `workers` option; close it when done.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, type PackedTensor, shardRows, sumFlatGradients } from '@prfl/tensor';
import { ParallelGroup } from '@prfl/tensor/parallel';
import type { Pavrm } from '../model/pavrm.js';
import type { PavrmBatchGradients, PavrmGradientWorkers, PavrmPreparedBatch } from '../train/train-step.js';
import { type PavrmShardResult, packPavrmShard, pavrmShardGradients } from './replica.js';

export interface PavrmWorkersOptions {
  /** Ways of parallelism, this thread included (1-16; on 2 cores: 2, this thread and one worker). */
  workers: number;
  /** The workers' backend, 'cpu' or 'wasm' (default the main thread's when it is one of them, else wasm). */
  backend?: 'cpu' | 'wasm';
}

/** Worker threads holding replicas of one PAVRM; `close()` them when training is done. */
export interface PavrmWorkers extends PavrmGradientWorkers {
  close(): Promise<void>;
}

const SHARD_TASK = { module: '@prfl/reward', export: 'pavrmShardGradients' };

/**
 * Starts `workers - 1` threads, each with a replica of `reward` (built from `reward.replicaRecipe()`, weights
 * copied in). Before every step the current weights are published to them, so they follow the updates.
 * @throws InvalidArgumentError for a bad count or a reward whose backbone cannot be rebuilt in a worker.
 */
export async function startPavrmWorkers(reward: Pavrm, options: PavrmWorkersOptions): Promise<PavrmWorkers> {
  if (reward === null || typeof reward?.replicaRecipe !== 'function') {
    throw new InvalidArgumentError('startPavrmWorkers: expected a Pavrm');
  }
  const named = reward.namedVariables();
  const group = await ParallelGroup.start({
    ways: options?.workers,
    recipe: reward.replicaRecipe(),
    weights: named as ReadonlyMap<string, tf.Tensor>,
    ...(options?.backend === undefined ? {} : { backend: options.backend }),
  });
  const stableOf = new Map([...named].map(([stable, v]) => [v.name, stable]));

  return {
    size: group.ways,
    async gradients(p: PavrmPreparedBatch, variables: readonly tf.Variable[]): Promise<PavrmBatchGradients> {
      const names = variables.map((v) => {
        const stable = stableOf.get(v.name);
        if (stable === undefined) {
          throw new InvalidArgumentError(
            `PAVRM workers: ${v.name} is not a variable of the PAVRM they replicate`,
          );
        }
        return stable;
      });
      group.publish();
      const shards = shardRows(p.x0.shape[0], group.ways).map(([s, e]) => packPavrmShard(p, s, e, names));
      const results = await group.map<PavrmShardResult>(SHARD_TASK, shards, (a) =>
        pavrmShardGradients(reward, a as Parameters<typeof pavrmShardGradients>[1]),
      );
      // In shard order, by the main thread's variable names.
      const grads = sumFlatGradients(
        results.map((r) => r.grads),
        variables,
      ) as tf.NamedTensorMap;
      const loss = results.reduce((a, r) => a + r.loss, 0);
      const parts = (r: PavrmShardResult[], k: number) => concatRows(r.map((x) => x.scores[k]));
      const scores = p.kind === 'pairwise' ? [parts(results, 0), parts(results, 1)] : [parts(results, 0)];
      return { loss: tf.scalar(loss), grads, scores };
    },
    close: () => group.close(),
  };
}

/** The shards' logits, in shard order, as one [B] tensor. */
function concatRows(packed: ReadonlyArray<PackedTensor | undefined>): tf.Tensor1D {
  const values: number[] = [];
  for (const p of packed) {
    if (p === undefined) throw new InvalidArgumentError('PAVRM workers: a shard returned no scores');
    values.push(...p.data);
  }
  return tf.tensor1d(values, 'float32');
}
