/**
 * What a worker thread needs to hold a copy of a model: a recipe that builds one of the same architecture
 * (its weights are then copied from shared memory), and packed tensors, the plain form in which inputs and
 * results cross the thread boundary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../errors.js';

/**
 * How a worker builds a replica: `(await import(module))[export](spec)`, sync or async. The module is
 * imported by the worker (a package name resolves to its built files); `spec` must survive
 * structuredClone (plain data, typed arrays). The replica's `namedVariables()` must have the names and
 * shapes of the model it copies.
 */
export interface ReplicaRecipe {
  module: string;
  export: string;
  spec?: unknown;
}

/** What a recipe returns: a model (or a bundle of models) whose variables take the shared weights. */
export interface Replica {
  namedVariables(): ReadonlyMap<string, tf.Variable>;
  dispose?(): void;
}

/** A function run in a worker on its replica: `(await import(module))[export](replica, args)`. */
export interface ReplicaTask {
  module: string;
  export: string;
}

/** A tensor as plain data (copied across threads). */
export interface PackedTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/** A tensor's values, read from the device (one read). */
export function packTensor(t: tf.Tensor): PackedTensor {
  if (t.dtype !== 'float32' && t.dtype !== 'int32') {
    throw new InvalidArgumentError(`packTensor: expected a float32 or int32 tensor, got ${t.dtype}`);
  }
  return {
    shape: [...t.shape],
    dtype: t.dtype,
    data: t.dataSync() as Float32Array | Int32Array,
  };
}

/** A new tensor from packed data (the caller disposes it). */
export function unpackTensor(p: PackedTensor): tf.Tensor {
  if (p === null || typeof p !== 'object' || !Array.isArray(p.shape) || !ArrayBuffer.isView(p.data)) {
    throw new InvalidArgumentError('unpackTensor: expected { shape, dtype, data }');
  }
  return tf.tensor(p.data, p.shape, p.dtype);
}

/** Rows [start, end) of a tensor along axis 0, packed (the whole tensor without a slice when it is all rows). */
export function packRows(t: tf.Tensor, start: number, end: number): PackedTensor {
  if (start === 0 && end === t.shape[0]) return packTensor(t);
  const part = tf.slice(t, [start], [end - start]);
  try {
    return packTensor(part);
  } finally {
    part.dispose();
  }
}

/** `unpackTensor`, the new tensor also pushed to `owned` (what a task disposes when it ends). */
export function unpackOwned<T extends tf.Tensor>(p: PackedTensor, owned: tf.Tensor[]): T {
  const t = unpackTensor(p) as T;
  owned.push(t);
  return t;
}

/**
 * A replica's variables by the names the main thread sent (in that order).
 * @throws InvalidArgumentError naming the first one the replica does not have.
 */
export function variablesByName(
  replica: { namedVariables(): ReadonlyMap<string, tf.Variable> },
  names: readonly string[],
  what: string,
): tf.Variable[] {
  const named = replica.namedVariables();
  return names.map((n) => {
    const v = named.get(n);
    if (v === undefined) throw new InvalidArgumentError(`${what}: the replica has no variable ${n}`);
    return v;
  });
}

/** Rows [start, end) of a tensor along axis 0 (a new tensor). */
export function sliceRows<T extends tf.Tensor>(t: T, start: number, end: number): T {
  return tf.slice(t, [start], [end - start]) as T;
}

/**
 * Splits `n` rows into at most `parts` contiguous shards as even as possible, earlier shards one larger:
 * [start, end) pairs, never empty.
 */
export function shardRows(n: number, parts: number): Array<[number, number]> {
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`shardRows: expected a positive row count, got ${String(n)}`);
  }
  if (!Number.isInteger(parts) || parts < 1) {
    throw new InvalidArgumentError(`shardRows: expected a positive shard count, got ${String(parts)}`);
  }
  const k = Math.min(n, parts);
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < k; i++) {
    const size = Math.floor(n / k) + (i < n % k ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

/**
 * Gradients of one shard as one flat float32 array (the variables' values one after the other, zeros for
 * a variable the loss did not reach, `present` false for it): one copy out of the backend, and one buffer
 * to move to the main thread (see `transferResult`).
 */
export interface FlatGradients {
  values: Float32Array;
  present: boolean[];
}

/** Packs `grads` (by tfjs variable name, as tf.variableGrads returns them) in the order of `variables`. */
export function packGradients(
  grads: Readonly<Record<string, tf.Tensor>>,
  variables: readonly tf.Variable[],
): FlatGradients {
  const size = variables.reduce((a, v) => a + v.size, 0);
  const values = new Float32Array(size);
  const present: boolean[] = [];
  let offset = 0;
  for (const v of variables) {
    const g = grads[v.name];
    present.push(g !== undefined);
    if (g !== undefined) {
      if (g.size !== v.size) {
        throw new InvalidArgumentError(
          `packGradients: ${v.name} has ${v.size} values, its gradient ${g.size}`,
        );
      }
      values.set(g.dataSync() as Float32Array, offset);
    }
    offset += v.size;
  }
  return { values, present };
}

/**
 * Adds flat shard gradients in shard order (into the first shard's array, which the caller must own) and
 * returns them as tensors by the names of `variables` (a variable no shard reached is absent).
 */
export function sumFlatGradients(
  shards: readonly FlatGradients[],
  variables: readonly { name: string; shape: readonly number[]; size: number }[],
): Record<string, tf.Tensor> {
  const size = variables.reduce((a, v) => a + v.size, 0);
  if (shards.length === 0) throw new InvalidArgumentError('sumFlatGradients: no shards');
  for (const s of shards) {
    if (s.values.length !== size || s.present.length !== variables.length) {
      throw new InvalidArgumentError(
        `sumFlatGradients: expected ${size} values for ${variables.length} variables, got ${s.values.length} for ${s.present.length}`,
      );
    }
  }
  const sum = (shards[0] as FlatGradients).values;
  for (let k = 1; k < shards.length; k++) {
    const add = (shards[k] as FlatGradients).values;
    for (let i = 0; i < size; i++) sum[i] = (sum[i] as number) + (add[i] as number);
  }
  const out: Record<string, tf.Tensor> = {};
  let offset = 0;
  variables.forEach((v, j) => {
    if (shards.some((s) => s.present[j])) {
      out[v.name] = tf.tensor(sum.subarray(offset, offset + v.size), [...v.shape], 'float32');
    }
    offset += v.size;
  });
  return out;
}

const TRANSFER = Symbol.for('@prfl/tensor/replica-transfer');

/** A task result whose buffers move to the main thread instead of being copied. */
export interface TransferResult<T> {
  readonly [TRANSFER]: ArrayBuffer[];
  readonly value: T;
}

/**
 * Marks a task's result so that `buffers` move to the main thread (zero-copy; the worker must not use them
 * again). The main thread receives `value`.
 */
export function transferResult<T>(value: T, buffers: ArrayBuffer[]): TransferResult<T> {
  return { [TRANSFER]: buffers, value };
}

/** The buffers of a `transferResult`, or null for a plain result. @internal (the worker's). */
export function transferOf(result: unknown): { value: unknown; buffers: ArrayBuffer[] } | null {
  if (result === null || typeof result !== 'object' || !(TRANSFER in result)) return null;
  const r = result as TransferResult<unknown>;
  return { value: r.value, buffers: r[TRANSFER] };
}
