/**
 * A pool of worker threads, each holding a replica of one model (built from a recipe, weights copied from
 * shared memory), running functions on their replicas in parallel: the machinery of data-parallel training
 * and generation in Node (one thread per worker; on 2 cores, 2 workers). The main thread publishes new
 * weights after an update; every task sees the weights published before it was started.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Piscina } from 'piscina';
import { InvalidArgumentError } from '../errors.js';
import type { ReplicaRecipe, ReplicaTask } from './replica.js';
import { SharedWeights } from './shared-weights.js';
import type { ReplicaTaskMessage, ReplicaWorkerData } from './worker.js';

export interface ReplicaPoolOptions {
  /** Worker threads (each one replica, one wasm thread). */
  workers: number;
  /** How each worker builds its replica. */
  recipe: ReplicaRecipe;
  /**
   * The model's variables by the replica's names: their values are copied to the workers now and on each
   * `publish()` (the same map is read again, so pass the live variables).
   */
  weights: ReadonlyMap<string, tf.Tensor>;
  /** The workers' backend: 'cpu' or 'wasm'. Default the main thread's (refused when it is webgpu). */
  backend?: 'cpu' | 'wasm';
}

/** Where the built worker is: beside this file in dist, or dist/parallel when running from src (tests). */
function workerFile(): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts')
    ? new URL('../../dist/parallel/worker.js', here)
    : new URL('./parallel/worker.js', new URL('.', here).href.replace(/\/parallel\/$/, '/'));
  const file = fileURLToPath(url);
  if (!existsSync(file)) {
    throw new Error(
      `ReplicaPool: the worker script ${file} is missing (build @prfl/tensor first: npm run build -w @prfl/tensor)`,
    );
  }
  return file;
}

/**
 * The parent's Node flags without export conditions: workers run built JavaScript, and a condition such
 * as a test runner's source condition (which maps packages to their TypeScript) would break them.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--conditions' || a === '-C') {
      i++;
      continue;
    }
    if (a.startsWith('--conditions=')) continue;
    out.push(a);
  }
  return out;
}

export const MAX_REPLICA_WORKERS = 16;

/** Worker threads with one model replica each. Close it when done (it keeps threads alive). */
export class ReplicaPool {
  readonly size: number;
  readonly backend: 'cpu' | 'wasm';
  readonly #piscina: Piscina;
  readonly #weights: SharedWeights;
  readonly #source: ReadonlyMap<string, tf.Tensor>;
  #version = 1;
  #running = 0;
  #closed = false;

  private constructor(
    piscina: Piscina,
    weights: SharedWeights,
    o: ReplicaPoolOptions,
    backend: 'cpu' | 'wasm',
  ) {
    this.#piscina = piscina;
    this.#weights = weights;
    this.#source = o.weights;
    this.size = o.workers;
    this.backend = backend;
  }

  /**
   * Starts the workers and builds every replica (their errors surface here).
   * @throws InvalidArgumentError for a bad worker count, backend, recipe or weights.
   */
  static async start(options: ReplicaPoolOptions): Promise<ReplicaPool> {
    const o = options ?? ({} as ReplicaPoolOptions);
    if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > MAX_REPLICA_WORKERS) {
      throw new InvalidArgumentError(
        `ReplicaPool: workers must be an integer in [1, ${MAX_REPLICA_WORKERS}], got ${String(o.workers)}`,
      );
    }
    if (typeof o.recipe?.module !== 'string' || typeof o.recipe?.export !== 'string') {
      throw new InvalidArgumentError(
        `ReplicaPool: recipe must be { module, export, spec? }, got ${JSON.stringify(o.recipe)?.slice(0, 120)}`,
      );
    }
    if (!(o.weights instanceof Map) || o.weights.size === 0) {
      throw new InvalidArgumentError('ReplicaPool: weights must be a non-empty Map of name -> tensor');
    }
    const backend = o.backend ?? tf.getBackend();
    if (backend !== 'cpu' && backend !== 'wasm') {
      throw new InvalidArgumentError(
        `ReplicaPool: workers run on 'cpu' or 'wasm', got ${JSON.stringify(backend)}${o.backend === undefined ? " (this thread's backend; pass backend, or use one worker)" : ''}`,
      );
    }
    const weights = SharedWeights.of(o.weights);
    const workerData: ReplicaWorkerData = { backend, recipe: o.recipe, weights: weights.handle };
    const piscina = new Piscina({
      filename: workerFile(),
      minThreads: o.workers,
      maxThreads: o.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      execArgv: workerExecArgv(),
      workerData,
    });
    const pool = new ReplicaPool(piscina, weights, o, backend);
    try {
      // One empty task per worker: each builds its replica and takes the weights.
      await Promise.all(Array.from({ length: o.workers }, () => pool.#post(null, undefined)));
    } catch (e) {
      await piscina.destroy();
      throw e;
    }
    return pool;
  }

  /** The weights version tasks see now (1 after start, one more per publish). */
  get version(): number {
    return this.#version;
  }

  /**
   * Copies the current values of the weights map into shared memory; later tasks see them.
   * @throws Error while tasks are running (they would read half-written weights).
   */
  publish(): void {
    this.#open('publish');
    if (this.#running > 0) {
      throw new Error(`ReplicaPool.publish: ${this.#running} task(s) still running; await them first`);
    }
    this.#weights.write(this.#source);
    this.#version++;
  }

  /**
   * Runs `task` once per element of `args`, in parallel over the workers (each takes the next one when
   * free); results in the order of `args`. `onResult` is called as each finishes (progress).
   */
  async map<R>(
    task: ReplicaTask,
    args: readonly unknown[],
    onResult?: (index: number, result: R) => void,
  ): Promise<R[]> {
    this.#open('map');
    if (typeof task?.module !== 'string' || typeof task?.export !== 'string') {
      throw new InvalidArgumentError('ReplicaPool.map: task must be { module, export }');
    }
    return Promise.all(
      args.map(async (a, i) => {
        const r = (await this.#post(task, a)) as R;
        onResult?.(i, r);
        return r;
      }),
    );
  }

  async #post(task: ReplicaTask | null, args: unknown): Promise<unknown> {
    const message: ReplicaTaskMessage = { version: this.#version, task, args };
    this.#running++;
    try {
      return await this.#piscina.run(message);
    } finally {
      this.#running--;
    }
  }

  #open(what: string): void {
    if (this.#closed) throw new Error(`ReplicaPool.${what}: the pool is closed`);
  }

  /** Stops the workers (their replicas go with them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#piscina.destroy();
  }
}
