/**
 * Small operations on gradient maps (variable name -> tensor, as tf.variableGrads returns them).
 */
import * as tf from '@tensorflow/tfjs-core';

export type Grads = Record<string, tf.Tensor>;

/** The global L2 norm as a number (one device read); NaN or Inf when a gradient holds one. */
export function globalNorm(grads: Readonly<Grads>): number {
  const list = Object.values(grads);
  if (list.length === 0) return 0;
  const norm = tf.tidy(() => tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g))))));
  const value = norm.dataSync()[0] as number;
  norm.dispose();
  return value;
}

/** a + b by name (new tensors; a name in only one map is copied). */
export function addGrads(a: Readonly<Grads>, b: Readonly<Grads>): Grads {
  const out: Grads = {};
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[name];
    const y = b[name];
    out[name] = x && y ? tf.add(x, y) : tf.clone((x ?? y) as tf.Tensor);
  }
  return out;
}

export function disposeGrads(...maps: ReadonlyArray<Readonly<Grads> | null | undefined>): void {
  for (const m of maps) if (m) tf.dispose(Object.values(m));
}
