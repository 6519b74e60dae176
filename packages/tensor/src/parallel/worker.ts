/**
 * The worker-thread side of ReplicaPool (run by piscina). On start: the backend the main thread asked for,
 * on one thread (the pool's workers are the parallelism), then the replica from its recipe. Per task: the
 * shared weights copied into the replica when the task carries a newer version, then the task's function.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { nodeImport } from '../node/node-import.js';
import type { Replica, ReplicaRecipe, ReplicaTask } from './replica.js';
import type { SharedWeightsHandle } from './shared-weights.js';

/** What the pool hands every worker once. */
export interface ReplicaWorkerData {
  backend: 'cpu' | 'wasm';
  recipe: ReplicaRecipe;
  weights: SharedWeightsHandle;
}

/** One task: the weights version it must see, the function to run, its arguments. */
export interface ReplicaTaskMessage {
  version: number;
  task: ReplicaTask | null;
  args?: unknown;
}

type TensorModule = typeof import('../index.js');

async function exported<T>(module: string, name: string): Promise<T> {
  const m = (await nodeImport<Record<string, unknown>>(module)) as Record<string, unknown>;
  const f = m[name];
  if (typeof f !== 'function') {
    throw new Error(`ReplicaPool worker: ${module} has no function export '${name}' (got ${typeof f})`);
  }
  return f as T;
}

const boot = workerData as ReplicaWorkerData;
// The public module (not a bundled copy), so the replica's code and this file share one backend state.
const ready: Promise<{ tensor: TensorModule; replica: Replica }> = (async () => {
  const tensor = await nodeImport<TensorModule>('@prfl/tensor');
  await tensor.initBackend({ backend: boot.backend, threads: 1 });
  const make = await exported<(spec: unknown) => Replica | Promise<Replica>>(
    boot.recipe.module,
    boot.recipe.export,
  );
  const replica = await make(boot.recipe.spec);
  if (replica === null || typeof replica?.namedVariables !== 'function') {
    throw new Error(
      `ReplicaPool worker: ${boot.recipe.module}#${boot.recipe.export} must return an object with namedVariables()`,
    );
  }
  return { tensor, replica };
})();
// An unhandled rejection would end the thread before the first task could report it.
ready.catch(() => {});

let version = -1;
const tasks = new Map<string, (replica: Replica, args: unknown) => unknown>();

export default async function runReplicaTask(message: ReplicaTaskMessage): Promise<unknown> {
  const { tensor, replica } = await ready;
  if (message.version !== version) {
    tensor.SharedWeights.attach(boot.weights).assignTo(
      replica.namedVariables() as ReadonlyMap<string, tf.Variable>,
    );
    version = message.version;
  }
  if (message.task === null) return null;
  const key = `${message.task.module}#${message.task.export}`;
  let run = tasks.get(key);
  if (run === undefined) {
    const loaded = await exported<(replica: Replica, args: unknown) => unknown>(
      message.task.module,
      message.task.export,
    );
    tasks.set(key, loaded);
    run = loaded;
  }
  const result = await run(replica, message.args);
  const moved = tensor.transferOf(result);
  if (moved === null) return result;
  // piscina moves what a Transferable lists and resolves the task with its value.
  return move({ [transferableSymbol]: moved.buffers, [valueSymbol]: moved.value } as never);
}
