/**
 * Conversion between a Wan DiT's PyTorch state dict (Wan's key names, PyTorch layouts) and our
 * variables (same keys, tfjs layouts). Strict: the key set must match the config exactly and every
 * shape must agree, checked before any value is converted, so nothing loads half-way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '@prfl/tensor';
import type { ParamSpec } from './params.js';

/** Tensors by name, as a Map or a plain record (what loadSafetensors returns). */
export type StateDict = ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>;

function entries(state: StateDict): Map<string, tf.Tensor> {
  return state instanceof Map ? new Map(state) : new Map(Object.entries(state));
}

/**
 * Checks checkpoint keys and PyTorch shapes against the parameter table. `shapes` maps every key of the
 * checkpoint to its stored shape.
 *
 * @throws InvalidArgumentError listing all missing and unexpected keys, or naming the first key whose
 *   shape differs together with both shapes.
 */
export function checkStateDictShapes(
  specs: readonly ParamSpec[],
  shapes: ReadonlyMap<string, readonly number[]>,
  what: string,
): void {
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !shapes.has(s.name)).map((s) => s.name);
  const unexpected = [...shapes.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
    throw new InvalidArgumentError(`${what}: the checkpoint does not match the config: ${parts.join('; ')}`);
  }
  for (const s of specs) {
    const got = shapes.get(s.name) as readonly number[];
    if (got.length !== s.torchShape.length || got.some((d, i) => d !== s.torchShape[i])) {
      throw new InvalidArgumentError(
        `${what}: ${s.name} has shape ${formatShape(got)} in the checkpoint, expected ${formatShape(s.torchShape)}`,
      );
    }
  }
}

/** One value, PyTorch layout -> tfjs layout (float32). The caller disposes input and result. */
export function fromTorchLayout(spec: ParamSpec, value: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const v = tf.cast(value, 'float32');
    if (spec.layout === 'linear') return tf.transpose(v);
    if (spec.layout === 'conv3d') return tf.transpose(v, [2, 3, 4, 1, 0]);
    return tf.clone(v);
  });
}

/** One value, tfjs layout -> PyTorch layout. The caller disposes input and result. */
export function toTorchLayout(spec: ParamSpec, value: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    if (spec.layout === 'linear') return tf.transpose(value);
    if (spec.layout === 'conv3d') return tf.transpose(value, [4, 3, 0, 1, 2]);
    return tf.clone(value);
  });
}

/**
 * A PyTorch state dict -> tfjs-layout weights by key (new tensors; the caller disposes them and the
 * input). Validates keys and shapes first (see checkStateDictShapes).
 */
export function weightsFromStateDict(
  specs: readonly ParamSpec[],
  state: StateDict,
  what = 'Wan DiT state dict',
): Map<string, tf.Tensor> {
  const map = entries(state);
  checkStateDictShapes(specs, new Map([...map].map(([k, v]) => [k, v.shape])), what);
  const out = new Map<string, tf.Tensor>();
  for (const s of specs) out.set(s.name, fromTorchLayout(s, map.get(s.name) as tf.Tensor));
  return out;
}

/** Variables by key -> a PyTorch-layout state dict (new tensors; the caller disposes them). */
export function stateDictFromVariables(
  specs: readonly ParamSpec[],
  vars: ReadonlyMap<string, tf.Tensor>,
): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const s of specs) {
    const v = vars.get(s.name);
    if (v === undefined) throw new InvalidArgumentError(`state dict: no variable for ${s.name}`);
    out.set(s.name, toTorchLayout(s, v));
  }
  return out;
}
