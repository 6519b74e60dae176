/**
 * The gradient sum of one accumulation window, with its state exportable so a checkpoint written in the
 * middle of a window resumes exactly (@prfl/tensor's GradientAccumulator keeps its sums private). Serves
 * both update schedules of docs/method.md section 5: once per window (sum, then the mean at the boundary,
 * clipped once) and the reference's (each backward adds loss / GA and the buffer is clipped in place).
 */
import * as tf from '@tensorflow/tfjs-core';
import { clipByGlobalNorm, formatShape, InvalidArgumentError, PrflError } from '@prfl/tensor';

/** Key of the micro-step count in `stateDict()`. */
export const WINDOW_COUNT_KEY = 'window.count';

export class GradientWindow {
  #sums = new Map<string, tf.Tensor>();
  #count = 0;

  /** Contributions added since the last `take()`. */
  get count(): number {
    return this.#count;
  }

  /** sum += scale * grads (not disposed here). A name missing from `grads` counts as a zero gradient. */
  add(grads: Readonly<Record<string, tf.Tensor>>, scale = 1): void {
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.#sums.get(name);
      if (prev && (prev.shape.length !== g.shape.length || prev.shape.some((d, i) => d !== g.shape[i]))) {
        throw new InvalidArgumentError(
          `GradientWindow.add: gradient '${name}' has shape ${formatShape(g.shape)}, earlier ones ${formatShape(prev.shape)}`,
        );
      }
    }
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.#sums.get(name);
      const next = tf.tidy(() => {
        const scaled = scale === 1 ? tf.clone(g) : tf.mul(g, scale);
        return prev ? tf.add(prev, scaled) : scaled;
      });
      prev?.dispose();
      this.#sums.set(name, next);
    }
    this.#count++;
  }

  /** Clips the held sum to a global L2 norm in place (torch's clip_grad_norm_ on .grad); the norm before. */
  clipInPlace(maxNorm: number): number {
    if (this.#sums.size === 0) return 0;
    const sums = Object.fromEntries(this.#sums);
    const { grads, totalNorm } = clipByGlobalNorm(sums, maxNorm);
    tf.dispose(Object.values(sums));
    this.#sums = new Map(Object.entries(grads));
    return totalNorm;
  }

  /**
   * The window's gradient (new tensors, the caller's) and an empty window: the mean over the
   * contributions for 'mean', the plain sum for 'sum'.
   */
  take(reduction: 'mean' | 'sum'): Record<string, tf.Tensor> {
    if (this.#count === 0) throw new PrflError('GradientWindow.take: nothing was added');
    const out: Record<string, tf.Tensor> = {};
    for (const [name, sum] of this.#sums) {
      if (reduction === 'mean' && this.#count > 1) {
        out[name] = tf.div(sum, this.#count);
        sum.dispose();
      } else out[name] = sum;
    }
    this.#sums = new Map();
    this.#count = 0;
    return out;
  }

  /** Copies of the held sums and the count (a scalar under WINDOW_COUNT_KEY), for checkpoints. */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = { [WINDOW_COUNT_KEY]: tf.scalar(this.#count, 'float32') };
    for (const [name, sum] of this.#sums) out[name] = tf.clone(sum);
    return out;
  }

  /** Replaces the state by a `stateDict()`; the tensors are copied and stay the caller's. */
  loadStateDict(state: Readonly<Record<string, tf.Tensor>>): void {
    const countTensor = state[WINDOW_COUNT_KEY];
    const count = countTensor?.dataSync()[0];
    if (countTensor === undefined || !Number.isInteger(count) || (count as number) < 0) {
      throw new InvalidArgumentError(
        `GradientWindow.loadStateDict: '${WINDOW_COUNT_KEY}' must be a non-negative integer scalar, got ${String(count)}`,
      );
    }
    this.reset();
    for (const [name, t] of Object.entries(state)) {
      if (name !== WINDOW_COUNT_KEY) this.#sums.set(name, tf.clone(t));
    }
    this.#count = count as number;
  }

  /** Drops the held sums. */
  reset(): void {
    tf.dispose([...this.#sums.values()]);
    this.#sums = new Map();
    this.#count = 0;
  }
}
