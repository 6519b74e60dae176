/**
 * @prfl/refl/parallel (Node only): data-parallel PRFL over worker threads. With `workers: n`, every
 * micro-step's videos are split into n shards: the first runs in this thread on the run's own models, the
 * others on n - 1 worker threads holding replicas of the generator, the frozen reward and the scheduler;
 * each runs the SFT and reward terms on its shard, and the gradients are summed in shard order for the one
 * update the trainer makes. Pass the result as PrflTrainer's `workers` option; close it when done.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FlowUniPCScheduler } from '@prfl/schedulers';
import {
  InvalidArgumentError,
  type LatentRewardModel,
  type PackedTensor,
  packRows,
  type ReplicaRecipe,
  type Scheduler,
  shardRows,
  sumFlatGradients,
  type VelocityModel,
} from '@prfl/tensor';
import { ParallelGroup } from '@prfl/tensor/parallel';
import type {
  PrflGradientWorkers,
  PrflSummedTerm,
  PrflTermsInput,
  PrflTermsOutput,
} from '../prfl-step-parallel.js';
import type { PrflRun } from '../run.js';
import {
  GENERATOR_PREFIX,
  type PrflReplica,
  type PrflReplicaSpec,
  type PrflShardArgs,
  type PrflShardResult,
  type PrflShardTerm,
  prflShardTerms,
  REWARD_PREFIX,
} from './replica.js';

export interface PrflWorkersOptions {
  /** Ways of parallelism, this thread included (1-16; on 2 cores: 2, this thread and one worker). */
  workers: number;
  /** The workers' backend, 'cpu' or 'wasm' (default the main thread's when it is one of them, else wasm). */
  backend?: 'cpu' | 'wasm';
}

/** Worker threads holding replicas of a PRFL run's models; `close()` them when training is done. */
export interface PrflWorkers extends PrflGradientWorkers {
  close(): Promise<void>;
}

type Replicable = { replicaRecipe(): ReplicaRecipe; namedVariables(): ReadonlyMap<string, tf.Variable> };

function replicable(what: string, model: unknown): Replicable {
  const m = model as Partial<Replicable> | null;
  if (typeof m?.replicaRecipe !== 'function' || typeof m.namedVariables !== 'function') {
    throw new InvalidArgumentError(
      `startPrflWorkers: the ${what} has no replicaRecipe(), so a worker thread cannot build it (@prfl/models' WanDiT and @prfl/reward's Pavrm have one)`,
    );
  }
  return m as Replicable;
}

const TERMS_TASK = { module: '@prfl/refl', export: 'prflShardTerms' };

/**
 * Starts `workers - 1` threads, each with a replica of the generator, the reward (when given) and the
 * scheduler (FlowUniPCScheduler, the default). The weights are published before every micro-step.
 * @throws InvalidArgumentError for a bad count, a model a worker cannot rebuild, or another scheduler.
 */
export async function startPrflWorkers(
  components: { generator: VelocityModel; reward?: LatentRewardModel; scheduler?: Scheduler<unknown> },
  options: PrflWorkersOptions,
): Promise<PrflWorkers> {
  const generator = replicable('generator', components?.generator);
  const reward = components.reward === undefined ? null : replicable('reward', components.reward);
  const scheduler = components.scheduler ?? new FlowUniPCScheduler();
  if (!(scheduler instanceof FlowUniPCScheduler)) {
    throw new InvalidArgumentError('startPrflWorkers: workers run the FlowUniPCScheduler (the default) only');
  }
  const weights = new Map<string, tf.Variable>();
  for (const [k, v] of generator.namedVariables()) weights.set(GENERATOR_PREFIX + k, v);
  if (reward) for (const [k, v] of reward.namedVariables()) weights.set(REWARD_PREFIX + k, v);
  const spec: PrflReplicaSpec = {
    generator: generator.replicaRecipe(),
    reward: reward?.replicaRecipe() ?? null,
    scheduler: { ...scheduler.config },
  };
  const group = await ParallelGroup.start({
    ways: options?.workers,
    recipe: { module: '@prfl/refl', export: 'prflReplica', spec },
    weights,
    ...(options?.backend === undefined ? {} : { backend: options.backend }),
  });
  const nameOf = new Map([...generator.namedVariables()].map(([k, v]) => [v.name, GENERATOR_PREFIX + k]));
  // This thread's shard runs on the run's own models, named as the replicas are.
  const here: PrflReplica = {
    generator: components.generator as PrflReplica['generator'],
    reward: (components.reward ?? null) as PrflReplica['reward'],
    scheduler,
    namedVariables: () => weights,
  };

  return {
    size: group.ways,
    async terms(input: PrflTermsInput, run: PrflRun): Promise<PrflTermsOutput> {
      if (run.generator !== (components.generator as unknown)) {
        throw new InvalidArgumentError(
          'PRFL workers: the run trains another generator than the one they replicate',
        );
      }
      if ((run.reward ?? undefined) !== (components.reward as unknown) && input.reward) {
        throw new InvalidArgumentError(
          'PRFL workers: the run scores with another reward than the one they replicate',
        );
      }
      const runScheduler = run.scheduler as unknown;
      if (
        runScheduler !== scheduler &&
        !(
          runScheduler instanceof FlowUniPCScheduler &&
          JSON.stringify(runScheduler.config) === JSON.stringify(scheduler.config)
        )
      ) {
        throw new InvalidArgumentError(
          `PRFL workers: the run's scheduler (${(runScheduler as { constructor?: { name?: string } })?.constructor?.name ?? typeof runScheduler}) is not the one they replicate (FlowUniPCScheduler ${JSON.stringify(scheduler.config)}); pass it to startPrflWorkers`,
        );
      }
      if (input.reward && reward === null) {
        throw new InvalidArgumentError('PRFL workers: the reward term needs workers started with the reward');
      }
      const variables = run.variables;
      const names = variables.map((v) => {
        const n = nameOf.get(v.name);
        if (n === undefined)
          throw new InvalidArgumentError(`PRFL workers: ${v.name} is not a generator variable`);
        return n;
      });
      group.publish();
      const b = input.x0.shape[0];
      const o = run.options;
      const rows = packRows;
      const shards: PrflShardArgs[] = shardRows(b, group.ways).map(([s, e]) => {
        const { sft, reward: r } = input;
        const mask = input.conditioning.textMask;
        return {
          x0: rows(input.x0, s, e),
          text: rows(input.conditioning.text, s, e),
          ...(mask === undefined ? {} : { textMask: rows(mask, s, e) }),
          sft: sft
            ? {
                levels: sft.levels.slice(s, e).map((l) => ({ sigma: l.sigma, timestep: l.timestep })),
                eps: rows(sft.eps, s, e),
                weights: sft.weights ? rows(sft.weights, s, e) : null,
                weight: o.sftWeight,
              }
            : null,
          reward: r
            ? {
                k: r.k,
                noise: rows(r.noise, s, e),
                schedule: run.schedule,
                form: o.rewardLoss,
                weight: o.rewardWeight,
                target: o.hingeTarget,
              }
            : null,
          scale: (e - s) / b,
          names,
          checkpointing: o.gradientCheckpointing,
        };
      });
      const results = await group.map<PrflShardResult>(TERMS_TASK, shards, (a) =>
        // The run's own scheduler (checked equal above), not a second instance with caches of its own.
        prflShardTerms({ ...here, scheduler: run.scheduler as FlowUniPCScheduler }, a as PrflShardArgs),
      );
      // In shard order, by the main thread's variable names.
      const sum = (terms: PrflShardTerm[]): PrflSummedTerm => ({
        value: tf.scalar(terms.reduce((a, t) => a + t.loss, 0)),
        grads: sumFlatGradients(
          terms.map((t) => t.grads),
          variables,
        ) as tf.NamedTensorMap,
      });
      const sftTerms = results.map((r) => r.sft).filter((t): t is PrflShardTerm => t !== null);
      const rewardTerms = results
        .map((r) => r.reward)
        .filter((t): t is PrflShardTerm & { logits: PackedTensor } => t !== null);
      return {
        sft: input.sft ? sum(sftTerms) : null,
        reward: input.reward
          ? {
              ...sum(rewardTerms),
              logits: tf.tensor1d(
                rewardTerms.flatMap((t) => Array.from(t.logits.data)),
                'float32',
              ),
            }
          : null,
      };
    },
    close: () => group.close(),
  };
}
