/**
 * Flow UniPC is a multistep solver: its state holds each seed's previous model outputs. When seeds are
 * pruned, the survivors go on with their own rows of that state, so a survivor ends where it would have
 * ended without pruning (the same idea as `prfl sample --prune`, packages/cli/src/sample/prune.ts).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * A copy of a solver state whose batch-first tensors keep only rows `rows` of `batch`; other fields are
 * copied as they are, frozen objects stay frozen. The copy owns new tensors (free them with the
 * scheduler's `disposeState`); `state` is left intact.
 */
export function gatherSolverState<S>(state: S, rows: readonly number[], batch: number): S {
  const index = tf.tensor1d([...rows], 'int32');
  const made: tf.Tensor[] = [];
  const copy = (value: unknown, where: string): unknown => {
    if (value instanceof tf.Tensor) {
      if (value.rank === 0 || value.shape[0] !== batch) {
        throw new Error(
          `solver state ${where}: expected a batch-first tensor of ${batch} rows, got [${value.shape.join(', ')}]`,
        );
      }
      const gathered = tf.gather(value, index);
      made.push(gathered);
      return gathered;
    }
    if (Array.isArray(value)) {
      const out = value.map((v, i) => copy(v, `${where}[${i}]`));
      return Object.isFrozen(value) ? Object.freeze(out) : out;
    }
    if (value !== null && typeof value === 'object') {
      const out = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v, `${where}.${k}`)]));
      return Object.isFrozen(value) ? Object.freeze(out) : out;
    }
    return value;
  };
  try {
    return copy(state, 'state') as S;
  } catch (e) {
    tf.dispose(made);
    throw e;
  } finally {
    index.dispose();
  }
}
