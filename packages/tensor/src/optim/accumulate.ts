import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError, PrflError } from '../errors.js';
import type { GradientMap } from './grads.js';
import { gradientEntries } from './grads.js';

/** Options of GradientAccumulator. */
export interface GradientAccumulatorOptions {
  /** Micro-batches per optimizer update (the accumulation window), an integer >= 1. */
  steps: number;
  /**
   * `mean` (default): the window's gradient is sum / (number of micro-batches), what scaling each
   * micro-batch loss by 1/k before backward gives in torch, so lr does not depend on k. `sum`: plain sum.
   */
  reduction?: 'mean' | 'sum';
}

/**
 * Sums gradients over `steps` micro-batches and says when the window is full, so that exactly one
 * optimizer update happens per window:
 *
 *     if (acc.add(grads)) { const g = acc.take(); optimizer.step(g); tf.dispose(g); }
 *     tf.dispose(grads);
 *
 * `add` refuses a micro-batch once the window is full until `take()` empties it, which makes a second
 * update at the same boundary impossible (the reference PRFL training loop calls optimizer.step() from two
 * sub-steps at one accumulation boundary, updating twice per window; this design rules that out).
 *
 * A parameter missing from some micro-batches counts as a zero gradient there; `mean` still divides by the
 * number of micro-batches. The accumulator copies what it needs: the caller keeps and disposes its own
 * gradients, and owns what `take()` returns.
 */
export class GradientAccumulator {
  readonly windowSize: number;
  readonly reduction: 'mean' | 'sum';
  #sums = new Map<string, tf.Tensor>();
  #count = 0;
  #disposed = false;

  constructor(options: GradientAccumulatorOptions) {
    const steps = options?.steps;
    if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1) {
      throw new InvalidArgumentError(
        `GradientAccumulator: steps: expected an integer >= 1, got ${String(steps)}`,
      );
    }
    const reduction = options.reduction ?? 'mean';
    if (reduction !== 'mean' && reduction !== 'sum') {
      throw new InvalidArgumentError(
        `GradientAccumulator: reduction: expected 'mean' or 'sum', got ${String(options.reduction)}`,
      );
    }
    this.windowSize = steps;
    this.reduction = reduction;
  }

  /** Micro-batches added to the current window. */
  get count(): number {
    return this.#count;
  }

  /** True when the window holds `windowSize` micro-batches: time for `take()` and one optimizer step. */
  get isFull(): boolean {
    return this.#count === this.windowSize;
  }

  /**
   * Adds one micro-batch's gradients (not disposed here). Returns true when this completed the window.
   * @throws PrflError when the window is already full (call `take()` first); InvalidArgumentError when a
   *   gradient's shape or dtype differs from earlier micro-batches of the window. Nothing is added then.
   */
  add(grads: GradientMap): boolean {
    this.#assertLive();
    if (this.isFull) {
      throw new PrflError(
        `GradientAccumulator.add: the window of ${this.windowSize} micro-batches is full; call take() and step the optimizer once before adding more`,
      );
    }
    const entries = gradientEntries(grads, 'GradientAccumulator.add');
    for (const [name, g] of entries) {
      const prev = this.#sums.get(name);
      if (g.dtype !== 'float32') {
        throw new InvalidArgumentError(
          `GradientAccumulator.add: gradient for '${name}' is ${g.dtype}; expected float32`,
        );
      }
      if (prev && (prev.shape.length !== g.shape.length || prev.shape.some((d, i) => d !== g.shape[i]))) {
        throw new InvalidArgumentError(
          `GradientAccumulator.add: gradient for '${name}' has shape ${formatShape(g.shape)} but earlier micro-batches had ${formatShape(prev.shape)}`,
        );
      }
    }
    for (const [name, g] of entries) {
      const prev = this.#sums.get(name);
      this.#sums.set(name, prev ? tf.add(prev, g) : tf.clone(g));
      prev?.dispose();
    }
    this.#count++;
    return this.isFull;
  }

  /**
   * Returns the window's gradients (summed or averaged; new tensors the caller disposes) and starts a new
   * window. Only on a full window unless `partial` is set (e.g. the end of an epoch), where `mean` divides
   * by the micro-batches actually added.
   * @throws PrflError when the window is not full (and not `partial`), or is empty.
   */
  take(options: { partial?: boolean } = {}): Record<string, tf.Tensor> {
    this.#assertLive();
    if (this.#count === 0) throw new PrflError('GradientAccumulator.take: no micro-batches were added');
    if (!this.isFull && !options.partial) {
      throw new PrflError(
        `GradientAccumulator.take: the window has ${this.#count} of ${this.windowSize} micro-batches; pass { partial: true } to take it anyway`,
      );
    }
    const out: Record<string, tf.Tensor> = {};
    for (const [name, sum] of this.#sums) {
      if (this.reduction === 'mean' && this.#count > 1) {
        out[name] = tf.div(sum, this.#count);
        sum.dispose();
      } else {
        out[name] = sum;
      }
    }
    this.#sums = new Map();
    this.#count = 0;
    return out;
  }

  /** Drops the current window's gradients. */
  reset(): void {
    tf.dispose([...this.#sums.values()]);
    this.#sums = new Map();
    this.#count = 0;
  }

  /** Frees the held gradients; the accumulator is unusable afterwards. */
  dispose(): void {
    this.reset();
    this.#disposed = true;
  }

  #assertLive(): void {
    if (this.#disposed) throw new PrflError('GradientAccumulator: this accumulator was disposed');
  }
}
