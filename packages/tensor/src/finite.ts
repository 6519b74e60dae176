/**
 * NaN/Inf checks on model inputs. A NaN latent flows through a network without error and comes out as
 * NaN velocities, rewards or losses several calls later, far from its cause; the models refuse it at the
 * door instead.
 *
 * Cost: the values are counted on the device (isNaN/isInf and a sum per tensor) and only the counts, two
 * numbers per tensor, are read back, in one read for all the tensors of a call. That read is a
 * synchronisation point (on WebGPU the CPU waits for the queued work); the whole tensor is downloaded
 * only when something is not finite, to say where.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from './errors.js';

/**
 * Throws when any of the named tensors holds NaN or ±Inf, naming the first such tensor, how many values
 * are bad and where the first one is. Integer and boolean tensors are skipped (always finite); absent
 * entries (`undefined`) too. One device read for all of them.
 *
 * @throws InvalidArgumentError `<name>: expected finite values, got 2 NaN and 0 Inf in a [..] tensor (first at flat index 5: NaN)`.
 */
export function assertFiniteTensors(tensors: ReadonlyArray<readonly [string, tf.Tensor | undefined]>): void {
  const checked = tensors.filter(
    (e): e is readonly [string, tf.Tensor] => e[1] !== undefined && e[1].dtype === 'float32',
  );
  if (checked.length === 0) return;
  const counts = tf.tidy(() =>
    tf.stack(
      checked.flatMap(([, t]) => [
        tf.sum(tf.cast(tf.isNaN(t), 'float32')),
        tf.sum(tf.cast(tf.isInf(t), 'float32')),
      ]),
    ),
  );
  const read = counts.dataSync();
  counts.dispose();
  checked.forEach(([what, t], k) => {
    const nan = read[2 * k] as number;
    const inf = read[2 * k + 1] as number;
    if (nan === 0 && inf === 0) return;
    const values = t.dataSync();
    let first = -1;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i] as number)) {
        first = i;
        break;
      }
    }
    throw new InvalidArgumentError(
      `${what}: expected finite values, got ${nan} NaN and ${inf} Inf in a ${formatShape(t.shape)} tensor (first at flat index ${first}: ${String(values[first])})`,
    );
  });
}

/**
 * Whether models check their inputs for NaN/Inf: `true` always, `false` never, `'auto'` (the models'
 * default) on every backend that can read a value back synchronously at little cost: cpu, wasm and
 * webgl, not webgpu. On WebGPU a synchronous read stalls the GPU queue in a browser and is not
 * available at all in Node (tfjs reads through an OffscreenCanvas there), so the check is left out
 * unless asked for with `true`.
 */
export type FiniteCheck = boolean | 'auto';

/** Resolves a `FiniteCheck` setting for the active backend (see `FiniteCheck`). */
export function finiteCheckActive(setting: FiniteCheck): boolean {
  if (setting === 'auto') return tf.getBackend() !== 'webgpu';
  return setting;
}

/** `assertFiniteTensors` for one tensor: throws when `t` holds NaN or ±Inf. One small device read. */
export function assertFiniteTensor(what: string, t: tf.Tensor): void {
  assertFiniteTensors([[what, t]]);
}
