/**
 * The worker-thread half of data-parallel PRFL (@prfl/refl/parallel is the main-thread half): a replica
 * of the generator, the frozen reward and the scheduler, and `prflShardTerms`, steps 2-6 of a micro-step on
 * one shard of the batch with the draws the main thread made: the SFT term, then the rollout to x_k, the
 * taped step k, the reward of x_{k+1} and its loss. Each loss is the shard's mean times its share of the
 * batch, so the shards' gradients add up to the batch's. Exported from the main entry so that a worker can
 * import it by the package's name.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FlowUniPCConfig, NoiseLevel } from '@prfl/schedulers';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import {
  type Conditioning,
  InvalidArgumentError,
  type LatentRewardModel,
  type LatentVideo,
  nodeImport,
  type FlatGradients,
  type PackedTensor,
  packGradients,
  packTensor,
  type ReplicaRecipe,
  type Schedule,
  stepIndex,
  type Timestep,
  type Trainable,
  type TransferResult,
  transferResult,
  unpackOwned,
  variablesByName,
  type VelocityModel,
} from '@prfl/tensor';
import { sftGrads } from '../checkpointing/sft-grads.js';
import { type CheckpointingMode, velocityGrads } from '../checkpointing/velocity-grads.js';
import { type RewardLossForm, rewardLoss } from '../reward-loss.js';
import { batchTimesteps, rolloutTo } from '../rollout.js';

/** Prefixes of the replica's variable names: the pool keeps both models in step under them. */
export const GENERATOR_PREFIX = 'generator/';
export const REWARD_PREFIX = 'reward/';

/** What a worker builds its replica from. */
export interface PrflReplicaSpec {
  generator: ReplicaRecipe;
  reward: ReplicaRecipe | null;
  scheduler: FlowUniPCConfig;
}

export interface PrflReplica {
  generator: VelocityModel;
  reward: (LatentRewardModel & Trainable) | null;
  scheduler: FlowUniPCScheduler;
  namedVariables(): ReadonlyMap<string, tf.Variable>;
}

async function build<T>(recipe: ReplicaRecipe): Promise<T> {
  const module = await nodeImport<Record<string, unknown>>(recipe.module);
  const make = module[recipe.export];
  if (typeof make !== 'function') {
    throw new InvalidArgumentError(`prflReplica: ${recipe.module} has no function export '${recipe.export}'`);
  }
  return (await make(recipe.spec)) as T;
}

/** Builds the generator, the reward and the scheduler a `PrflReplicaSpec` describes. */
export async function prflReplica(spec: PrflReplicaSpec): Promise<PrflReplica> {
  if (typeof spec?.generator?.module !== 'string') {
    throw new InvalidArgumentError('prflReplica: expected the spec startPrflWorkers makes');
  }
  const generator = await build<VelocityModel>(spec.generator);
  const reward = spec.reward === null ? null : await build<LatentRewardModel & Trainable>(spec.reward);
  const named = new Map<string, tf.Variable>();
  for (const [k, v] of generator.namedVariables()) named.set(GENERATOR_PREFIX + k, v);
  if (reward) for (const [k, v] of reward.namedVariables()) named.set(REWARD_PREFIX + k, v);
  return {
    generator,
    reward,
    scheduler: new FlowUniPCScheduler(spec.scheduler),
    namedVariables: () => named,
  };
}

/** One shard's inputs: its rows of the batch and of the main thread's draws. */
export interface PrflShardArgs {
  x0: PackedTensor;
  /** The conditioning after text dropout. */
  text: PackedTensor;
  textMask?: PackedTensor;
  sft: {
    levels: NoiseLevel[];
    eps: PackedTensor;
    /** Reward-weighted regression's per-video weights (computed on the whole batch), or null. */
    weights: PackedTensor | null;
    weight: number;
  } | null;
  reward: {
    k: number;
    noise: PackedTensor;
    schedule: Schedule;
    form: RewardLossForm;
    weight: number;
    target: number;
  } | null;
  /** The shard's share of the batch, n / B. */
  scale: number;
  /** The trained variables by replica name. */
  names: string[];
  checkpointing: CheckpointingMode;
}

export interface PrflShardTerm {
  /** The shard's part of the loss (unclamped). */
  loss: number;
  /** Flat, in the order of the args' `names`. */
  grads: FlatGradients;
}

export interface PrflShardResult {
  sft: PrflShardTerm | null;
  reward: (PrflShardTerm & { logits: PackedTensor }) | null;
}

/** Steps 2-6 of a PRFL micro-step on one shard, in a worker, on its replica (the gradients move, not copied). */
export function prflShardTerms(replica: PrflReplica, a: PrflShardArgs): TransferResult<PrflShardResult> {
  const variables = variablesByName(replica, a.names, 'prflShardTerms');
  // What trains is the main thread's choice: a fresh replica's own flags (frozen embeddings, say) must not
  // make tfjs drop a gradient the main thread asked for.
  for (const v of variables) v.trainable = true;
  const owned: tf.Tensor[] = [];
  const take = <T extends tf.Tensor>(p: PackedTensor): T => unpackOwned<T>(p, owned);
  const moved: ArrayBuffer[] = [];
  const settle = (taped: { value: tf.Scalar; grads: tf.NamedTensorMap }): PrflShardTerm => {
    owned.push(taped.value, ...Object.values(taped.grads));
    const grads = packGradients(taped.grads, variables);
    moved.push(grads.values.buffer as ArrayBuffer);
    return { loss: taped.value.dataSync()[0] as number, grads };
  };
  try {
    const x0 = take<LatentVideo>(a.x0);
    const n = x0.shape[0];
    const cond: Conditioning = {
      text: take<tf.Tensor3D>(a.text),
      ...(a.textMask === undefined ? {} : { textMask: take<tf.Tensor2D>(a.textMask) }),
    };
    // 2. The SFT term: weight * share * mean (weighted) flow-matching error of the shard's videos.
    let sft: PrflShardTerm | null = null;
    if (a.sft) {
      const s = a.sft;
      const w = s.weights === null ? null : take<tf.Tensor1D>(s.weights);
      sft = settle(
        sftGrads({
          model: replica.generator,
          x0,
          eps: take<LatentVideo>(s.eps),
          levels: s.levels,
          conditioning: cond,
          loss: (perSample) => {
            const mse = w ? tf.mean(tf.mul(perSample, w)) : tf.mean(perSample);
            return tf.mul(s.weight * a.scale, mse) as tf.Scalar;
          },
          variables,
          checkpointing: a.checkpointing,
        }),
      );
    }
    // 3-6. The reward term: rollout to x_k without a tape, step k taped, the frozen reward of x_{k+1}.
    let reward: PrflShardResult['reward'] = null;
    if (a.reward) {
      const r = a.reward;
      if (replica.reward === null)
        throw new InvalidArgumentError('prflShardTerms: the replica has no reward');
      const { schedule, k } = r;
      const rolled = rolloutTo(
        replica.generator,
        replica.scheduler,
        schedule,
        take<LatentVideo>(r.noise),
        cond,
        k,
      );
      owned.push(rolled.sample);
      let logits: tf.Tensor | null = null;
      try {
        const term = settle(
          velocityGrads({
            model: replica.generator,
            x: rolled.sample,
            timesteps: batchTimesteps(schedule.timesteps[k] as Timestep, n),
            conditioning: cond,
            variables,
            checkpointing: a.checkpointing,
            loss: (v) => {
              const next = replica.scheduler.step({
                schedule,
                index: stepIndex(k, schedule.numSteps),
                sample: rolled.sample,
                modelOutput: v,
                state: rolled.state,
              }).sample;
              const scores = (replica.reward as LatentRewardModel).score(
                next,
                batchTimesteps(schedule.timesteps[k + 1] as Timestep, n),
                cond,
              );
              logits = tf.keep(scores);
              return tf.mul(rewardLoss(scores, r.form, r.weight, r.target), a.scale) as tf.Scalar;
            },
          }),
        );
        reward = { ...term, logits: packTensor(logits as unknown as tf.Tensor) };
      } finally {
        replica.scheduler.disposeState(rolled.state);
        if (logits) owned.push(logits);
      }
    }
    return transferResult({ sft, reward }, moved);
  } finally {
    tf.dispose(owned);
  }
}
