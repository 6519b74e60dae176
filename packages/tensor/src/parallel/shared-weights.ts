/**
 * Named tensors laid out in one SharedArrayBuffer: the main thread writes a model's weights into it after
 * each update, and every worker thread copies them into its replica's variables when the version it was
 * handed is newer than the one it holds. No copy crosses the thread boundary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../errors.js';
import { formatShape } from '../errors.js';

/** Where each tensor lives in the buffer (float32 elements). Plain data: it is posted to workers. */
export interface SharedWeightsLayout {
  names: string[];
  shapes: number[][];
  offsets: number[];
  /** Total float32 elements. */
  size: number;
}

/** The buffer and its layout, as handed to a worker. */
export interface SharedWeightsHandle {
  buffer: SharedArrayBuffer;
  layout: SharedWeightsLayout;
}

function layoutOf(named: ReadonlyMap<string, tf.Tensor>): SharedWeightsLayout {
  const names: string[] = [];
  const shapes: number[][] = [];
  const offsets: number[] = [];
  let size = 0;
  for (const [name, t] of named) {
    if (t.dtype !== 'float32') {
      throw new InvalidArgumentError(`SharedWeights: ${name} must be float32, got ${t.dtype}`);
    }
    names.push(name);
    shapes.push([...t.shape]);
    offsets.push(size);
    size += t.size;
  }
  return { names, shapes, offsets, size };
}

/** A model's named weights in shared memory. */
export class SharedWeights {
  readonly buffer: SharedArrayBuffer;
  readonly layout: SharedWeightsLayout;
  readonly #view: Float32Array;

  private constructor(handle: SharedWeightsHandle) {
    this.buffer = handle.buffer;
    this.layout = handle.layout;
    this.#view = new Float32Array(handle.buffer, 0, handle.layout.size);
  }

  /** A buffer sized and laid out for `named`, holding their current values. */
  static of(named: ReadonlyMap<string, tf.Tensor>): SharedWeights {
    const layout = layoutOf(named);
    const w = new SharedWeights({ buffer: new SharedArrayBuffer(layout.size * 4), layout });
    w.write(named);
    return w;
  }

  /** The buffer a worker received. */
  static attach(handle: SharedWeightsHandle): SharedWeights {
    return new SharedWeights(handle);
  }

  get handle(): SharedWeightsHandle {
    return { buffer: this.buffer, layout: this.layout };
  }

  /**
   * Copies `named` into the buffer (one device read each).
   * @throws InvalidArgumentError when the names or shapes are not the layout's.
   */
  write(named: ReadonlyMap<string, tf.Tensor>): void {
    this.#check(named, 'write');
    this.layout.names.forEach((name, i) => {
      const t = named.get(name) as tf.Tensor;
      this.#view.set(t.dataSync() as Float32Array, this.layout.offsets[i] as number);
    });
  }

  /**
   * Assigns the buffer's values to `variables` (a replica's, by the same names).
   * @throws InvalidArgumentError when the names or shapes are not the layout's.
   */
  assignTo(variables: ReadonlyMap<string, tf.Variable>): void {
    this.#check(variables, 'assignTo');
    this.layout.names.forEach((name, i) => {
      const v = variables.get(name) as tf.Variable;
      const start = this.layout.offsets[i] as number;
      // A copy: the shared memory changes under a tensor that aliased it.
      const values = this.#view.slice(start, start + v.size);
      tf.tidy(() => v.assign(tf.tensor(values, v.shape, 'float32')));
    });
  }

  #check(named: ReadonlyMap<string, tf.Tensor>, what: string): void {
    const { names, shapes } = this.layout;
    if (named.size !== names.length) {
      const missing = names.filter((n) => !named.has(n));
      const extra = [...named.keys()].filter((n) => !names.includes(n));
      throw new InvalidArgumentError(
        `SharedWeights.${what}: expected the ${names.length} tensors of the layout, got ${named.size}` +
          `${missing.length ? `; missing ${missing.slice(0, 3).join(', ')}` : ''}` +
          `${extra.length ? `; not in the layout ${extra.slice(0, 3).join(', ')}` : ''}`,
      );
    }
    names.forEach((name, i) => {
      const t = named.get(name);
      if (t === undefined) throw new InvalidArgumentError(`SharedWeights.${what}: missing ${name}`);
      const shape = shapes[i] as number[];
      if (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
        throw new InvalidArgumentError(
          `SharedWeights.${what}: ${name} expected shape ${formatShape(shape)}, got ${formatShape(t.shape)}`,
        );
      }
    });
  }
}
