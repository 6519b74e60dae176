/**
 * n-way data parallelism with the main thread as one of the n: a ReplicaPool of n - 1 worker threads (none
 * for n = 1) and the main thread's own model. The first shard of every step runs here, on the live
 * weights, while the workers run the others: only n - 1 replicas take the weights and send gradients
 * back, and on n cores the main thread does not sit idle while the workers compute.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../errors.js';
import { type ReplicaRecipe, type ReplicaTask, transferOf } from './replica.js';
import { MAX_REPLICA_WORKERS, ReplicaPool } from './replica-pool.js';

export interface ParallelGroupOptions {
  /** Ways of parallelism, the main thread included: 1 (everything here) to 16. */
  ways: number;
  recipe: ReplicaRecipe;
  /** The main thread's model's variables by the replicas' names (read again on every publish). */
  weights: ReadonlyMap<string, tf.Tensor>;
  backend?: 'cpu' | 'wasm';
}

export class ParallelGroup {
  readonly ways: number;
  readonly #pool: ReplicaPool | null;

  private constructor(ways: number, pool: ReplicaPool | null) {
    this.ways = ways;
    this.#pool = pool;
  }

  /** Starts the ways - 1 workers (their replicas' errors surface here). */
  static async start(options: ParallelGroupOptions): Promise<ParallelGroup> {
    const ways = options?.ways;
    if (!Number.isInteger(ways) || ways < 1 || ways > MAX_REPLICA_WORKERS) {
      throw new InvalidArgumentError(
        `workers: expected an integer in [1, ${MAX_REPLICA_WORKERS}] (the main thread and the worker threads), got ${String(ways)}`,
      );
    }
    const pool =
      ways === 1
        ? null
        : await ReplicaPool.start({
            workers: ways - 1,
            recipe: options.recipe,
            weights: options.weights,
            ...(options.backend === undefined ? {} : { backend: options.backend }),
          });
    return new ParallelGroup(ways, pool);
  }

  /** Copies the main thread's current weights to the workers (call before every step that trains). */
  publish(): void {
    this.#pool?.publish();
  }

  /**
   * Runs `args[0]` here with `here` and the rest on the workers with `task` (the same computation, on their
   * replicas); results in the order of `args` (at most `ways` of them). The workers start first, so they
   * compute while this thread does.
   */
  async map<R>(task: ReplicaTask, args: readonly unknown[], here: (args: unknown) => unknown): Promise<R[]> {
    if (args.length < 1 || args.length > this.ways) {
      throw new InvalidArgumentError(
        `ParallelGroup.map: expected 1 to ${this.ways} shards, got ${args.length}`,
      );
    }
    const remote =
      this.#pool && args.length > 1 ? this.#pool.map<R>(task, args.slice(1)) : Promise.resolve([]);
    // A failure here must not leave the workers' promise unobserved.
    remote.catch(() => {});
    const local = here(args[0]);
    const moved = transferOf(local);
    const first = (moved === null ? local : moved.value) as R;
    return [first, ...(await remote)];
  }

  async close(): Promise<void> {
    await this.#pool?.close();
  }
}
