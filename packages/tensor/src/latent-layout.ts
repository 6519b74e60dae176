/**
 * Latent layouts at the PyTorch boundary. prfl holds video latents channels last, [B, F, H, W, C]
 * (tfjs's native layout for conv3d); PyTorch code (Wan2.1, diffusers) holds one video's latent as
 * [C, F, H, W] and a batch as [B, C, F, H, W]. These helpers convert both ways, for tfjs tensors and for
 * flat typed arrays with a shape (what a .npy or safetensors reader hands over before any tensor exists).
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from './errors.js';
import type { LatentVideo } from './types.js';

/** Typed arrays the flat-array helpers accept; the result has the input's type. */
export type LatentTypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array;

/** A flat array and the shape it is read in (row-major, last axis fastest). */
export interface ShapedArray<T extends LatentTypedArray = Float32Array> {
  data: T;
  shape: number[];
}

export interface LatentsToTorchOptions {
  /**
   * Keep the batch axis: [B, C, F, H, W] (default true). `false` gives one video's [C, F, H, W], what
   * Wan's pipelines pass around (lists of per-video tensors), and needs B = 1.
   */
  batch?: boolean;
}

function checkDims(what: string, shape: readonly number[], ranks: readonly number[], pattern: string): void {
  if (!ranks.includes(shape.length) || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InvalidArgumentError(
      `${what}: expected ${pattern} with positive dimensions, got ${formatShape(shape)}`,
    );
  }
}

/**
 * PyTorch latents -> ours: [C, F, H, W] (one video) becomes [1, F, H, W, C]; [B, C, F, H, W] becomes
 * [B, F, H, W, C]. A new tensor; the input is not disposed.
 *
 * @throws InvalidArgumentError for a tensor of another rank or with an empty dimension.
 */
export function latentsFromTorch(x: tf.Tensor): LatentVideo {
  if (!(x instanceof tf.Tensor)) {
    throw new InvalidArgumentError(
      `latentsFromTorch: expected a tensor [C, F, H, W] or [B, C, F, H, W], got ${typeof x}`,
    );
  }
  checkDims('latentsFromTorch', x.shape, [4, 5], '[C, F, H, W] or [B, C, F, H, W] (PyTorch layout)');
  return tf.tidy(() => {
    const batched = x.rank === 4 ? tf.expandDims(x, 0) : x;
    return tf.transpose(batched, [0, 2, 3, 4, 1]) as LatentVideo;
  });
}

/**
 * Ours -> PyTorch latents: [B, F, H, W, C] becomes [B, C, F, H, W], or [C, F, H, W] with
 * `{ batch: false }` (B must be 1). A new tensor; the input is not disposed.
 *
 * @throws InvalidArgumentError for a tensor that is not rank 5, or B > 1 with `batch: false`.
 */
export function latentsToTorch(x: LatentVideo, options?: { batch?: true }): tf.Tensor5D;
export function latentsToTorch(x: LatentVideo, options: { batch: false }): tf.Tensor4D;
export function latentsToTorch(x: LatentVideo, options?: LatentsToTorchOptions): tf.Tensor4D | tf.Tensor5D;
export function latentsToTorch(
  x: LatentVideo,
  options: LatentsToTorchOptions = {},
): tf.Tensor4D | tf.Tensor5D {
  if (!(x instanceof tf.Tensor)) {
    throw new InvalidArgumentError(
      `latentsToTorch: expected a latent video [B, F, H, W, C], got ${typeof x}`,
    );
  }
  checkDims('latentsToTorch', x.shape, [5], '[B, F, H, W, C] (channels last)');
  const keepBatch = options.batch ?? true;
  if (!keepBatch && x.shape[0] !== 1) {
    throw new InvalidArgumentError(
      `latentsToTorch: { batch: false } gives one video's [C, F, H, W] and needs B = 1, got ${formatShape(x.shape)}`,
    );
  }
  return tf.tidy(() => {
    const y = tf.transpose(x, [0, 4, 1, 2, 3]);
    return keepBatch ? (y as tf.Tensor5D) : (tf.squeeze(y, [0]) as tf.Tensor4D);
  });
}

/** Moves axis 1 of [B, C, S] to the end ([B, S, C]) or back, in a new array of the input's type. */
function permute<T extends LatentTypedArray>(data: T, b: number, c: number, s: number, toLast: boolean): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let i = 0; i < b; i++) {
    const base = i * c * s;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < s; p++) {
        // [B, C, S] index: base + ch * s + p; [B, S, C] index: base + p * c + ch.
        if (toLast) out[base + p * c + ch] = data[base + ch * s + p] as number;
        else out[base + ch * s + p] = data[base + p * c + ch] as number;
      }
    }
  }
  return out;
}

function checkArray(what: string, data: unknown, shape: readonly number[]): void {
  if (
    !ArrayBuffer.isView(data) ||
    data instanceof DataView ||
    typeof (data as { length?: unknown }).length !== 'number'
  ) {
    throw new InvalidArgumentError(`${what}: expected a typed array (Float32Array, ...), got ${typeof data}`);
  }
  const n = shape.reduce((a, d) => a * d, 1);
  if ((data as LatentTypedArray).length !== n) {
    throw new InvalidArgumentError(
      `${what}: the shape ${formatShape(shape)} holds ${n} values but the array has ${(data as LatentTypedArray).length}`,
    );
  }
}

/**
 * PyTorch latents as a flat array -> ours: `data` in [C, F, H, W] or [B, C, F, H, W] order becomes a new
 * array of the same type in [B, F, H, W, C] order (B = 1 for a single video), with that shape.
 *
 * @throws InvalidArgumentError for a shape of another rank, or an array whose length is not the shape's size.
 */
export function latentArrayFromTorch<T extends LatentTypedArray>(
  data: T,
  shape: readonly number[],
): { data: T; shape: [number, number, number, number, number] } {
  checkDims('latentArrayFromTorch', shape, [4, 5], '[C, F, H, W] or [B, C, F, H, W] (PyTorch layout)');
  checkArray('latentArrayFromTorch', data, shape);
  const [b, c, f, h, w] = (shape.length === 4 ? [1, ...shape] : shape) as number[];
  return {
    data: permute(data, b as number, c as number, (f as number) * (h as number) * (w as number), true),
    shape: [b as number, f as number, h as number, w as number, c as number],
  };
}

/**
 * Ours as a flat array -> PyTorch latents: `data` in [B, F, H, W, C] order becomes a new array of the
 * same type in [B, C, F, H, W] order, or [C, F, H, W] with `{ batch: false }` (B must be 1).
 *
 * @throws InvalidArgumentError for a shape that is not rank 5, an array whose length is not the shape's
 *   size, or B > 1 with `batch: false`.
 */
export function latentArrayToTorch<T extends LatentTypedArray>(
  data: T,
  shape: readonly number[],
  options: LatentsToTorchOptions = {},
): ShapedArray<T> {
  checkDims('latentArrayToTorch', shape, [5], '[B, F, H, W, C] (channels last)');
  checkArray('latentArrayToTorch', data, shape);
  const [b, f, h, w, c] = shape as [number, number, number, number, number];
  const keepBatch = options.batch ?? true;
  if (!keepBatch && b !== 1) {
    throw new InvalidArgumentError(
      `latentArrayToTorch: { batch: false } gives one video's [C, F, H, W] and needs B = 1, got ${formatShape(shape)}`,
    );
  }
  return {
    data: permute(data, b, c, f * h * w, false),
    shape: keepBatch ? [b, c, f, h, w] : [c, f, h, w],
  };
}
