/**
 * Early pruning keeps some seeds of a batch and drops the others part-way through sampling. A multistep
 * solver's state (flow UniPC's previous model outputs) holds one row per seed, so the survivors go on
 * with their own rows of it and end where they would have ended without pruning.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '@prfl/tensor';

/**
 * A copy of a solver state whose tensors hold only the batch rows `rows` (of `batch`), in that order;
 * every other field is copied as is, frozen objects stay frozen. The copy owns new tensors (free them
 * with the scheduler's `disposeState`); `state` is left intact.
 * @throws InvalidArgumentError when a tensor of the state is not batch-first with `batch` rows.
 */
export function gatherSolverState<S>(state: S, rows: readonly number[], batch: number): S {
  const index = tf.tensor1d([...rows], 'int32');
  const made: tf.Tensor[] = [];
  const copy = (value: unknown, where: string): unknown => {
    if (value instanceof tf.Tensor) {
      if (value.rank === 0 || value.shape[0] !== batch) {
        throw new InvalidArgumentError(
          `solver state ${where}: expected a batch-first tensor of ${batch} rows, got shape [${value.shape.join(', ')}]`,
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
      const out = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, copy(v, where === '' ? k : `${where}.${k}`)]),
      );
      return Object.isFrozen(value) ? Object.freeze(out) : out;
    }
    return value;
  };
  try {
    return copy(state, '') as S;
  } catch (e) {
    tf.dispose(made);
    throw e;
  } finally {
    index.dispose();
  }
}
