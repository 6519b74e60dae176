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
 * Adds per-shard gradients (name -> packed values) in shard order into new tensors, by the names of
 * `shapes`; a shard without a name contributes zero to it. The order is fixed, so the sum does not
 * depend on which worker finished first.
 */
export function sumPackedGradients(
  shards: ReadonlyArray<Readonly<Record<string, PackedTensor>>>,
  shapes: ReadonlyMap<string, readonly number[]>,
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    const sum = new Float32Array(size);
    let seen = false;
    for (const shard of shards) {
      const g = shard[name];
      if (g === undefined) continue;
      if (g.data.length !== size) {
        throw new InvalidArgumentError(
          `sumPackedGradients: ${name} expected ${size} values, got ${g.data.length}`,
        );
      }
      seen = true;
      for (let i = 0; i < size; i++) sum[i] = (sum[i] as number) + (g.data[i] as number);
    }
    if (seen) out[name] = tf.tensor(sum, [...shape], 'float32');
  }
  return out;
}
