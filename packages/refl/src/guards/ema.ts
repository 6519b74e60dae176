/**
 * An exponential moving average of the trained weights (docs/method.md section 5; the reference's
 * update_ema_model: ema = decay * ema + (1 - decay) * w, decay 0.99 in its configs, off by default).
 * Updated after every applied optimizer update; the copy lives beside the model and can be swapped in
 * for evaluation or saved.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFiniteInRange, formatShape, InvalidArgumentError } from '@prfl/tensor';

export class WeightEma {
  readonly decay: number;
  readonly #variables: readonly tf.Variable[];
  #shadow = new Map<string, tf.Tensor>();

  /** Starts at the variables' current values. */
  constructor(variables: readonly tf.Variable[], decay: number) {
    assertFiniteInRange('emaDecay', decay, 0, 1);
    this.decay = decay;
    this.#variables = [...variables];
    for (const v of variables) this.#shadow.set(v.name, tf.clone(v));
  }

  /** ema = decay * ema + (1 - decay) * w, for every variable. */
  update(): void {
    const d = this.decay;
    for (const v of this.#variables) {
      const prev = this.#shadow.get(v.name) as tf.Tensor;
      this.#shadow.set(
        v.name,
        tf.tidy(() => tf.add(tf.mul(prev, d), tf.mul(v, 1 - d))),
      );
      prev.dispose();
    }
  }

  /** The averaged value of a variable (by variable.name); owned by the EMA. */
  get(name: string): tf.Tensor | undefined {
    return this.#shadow.get(name);
  }

  /** Assigns the averaged values to the model's variables (keep a stateDict of the model to go back). */
  copyToModel(): void {
    for (const v of this.#variables) v.assign(this.#shadow.get(v.name) as tf.Tensor);
  }

  /** Copies of the averages by variable.name, the caller's to dispose. */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, t] of this.#shadow) out[name] = tf.clone(t);
    return out;
  }

  /** Replaces the averages (every variable, same shapes); checked before anything changes. */
  loadStateDict(state: Readonly<Record<string, tf.Tensor>>): void {
    for (const v of this.#variables) {
      const t = state[v.name];
      if (t === undefined || t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new InvalidArgumentError(
          `WeightEma.loadStateDict: '${v.name}': expected shape ${formatShape(v.shape)}, got ${t ? formatShape(t.shape) : 'nothing'}`,
        );
      }
    }
    for (const v of this.#variables) {
      this.#shadow.get(v.name)?.dispose();
      this.#shadow.set(v.name, tf.clone(state[v.name] as tf.Tensor));
    }
  }

  dispose(): void {
    tf.dispose([...this.#shadow.values()]);
    this.#shadow.clear();
  }
}
