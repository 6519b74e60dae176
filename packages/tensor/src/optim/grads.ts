import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, PrflError } from '../errors.js';

/**
 * Gradients by parameter name, as `tf.variableGrads(f).grads` returns them (keyed by `variable.name`), or
 * as a Map. A missing name, or a value of `undefined`/`null`, means "no gradient" (torch's `grad is None`).
 */
export type GradientMap =
  | Readonly<Record<string, tf.Tensor | null | undefined>>
  | ReadonlyMap<string, tf.Tensor | null | undefined>;

/**
 * Some gradients hold NaN or ±Inf. Thrown by `AdamW.step` (with `nonFinite: 'throw'`, the default) before
 * anything is updated, and by `clipByGlobalNorm` with `errorIfNonfinite`. `names` lists the offenders.
 */
export class NonFiniteGradientError extends PrflError {
  override name = 'NonFiniteGradientError';
  constructor(
    message: string,
    readonly names: readonly string[],
  ) {
    super(message);
  }
}

/** The present (non-null) entries of a gradient map, checked to be live tensors. @internal */
export function gradientEntries(grads: GradientMap, what: string): Array<[string, tf.Tensor]> {
  if (grads === null || typeof grads !== 'object') {
    throw new InvalidArgumentError(
      `${what}: expected a record or Map from parameter name to gradient tensor, got ${String(grads)}`,
    );
  }
  const raw: Iterable<[string, tf.Tensor | null | undefined]> =
    grads instanceof Map
      ? (grads as ReadonlyMap<string, tf.Tensor | null | undefined>).entries()
      : Object.entries(grads as Record<string, tf.Tensor | null | undefined>);
  const out: Array<[string, tf.Tensor]> = [];
  for (const [name, g] of raw) {
    if (g === undefined || g === null) continue;
    if (!(g instanceof tf.Tensor)) {
      throw new InvalidArgumentError(`${what}: gradient for '${name}' is not a tensor (got ${typeof g})`);
    }
    if (g.isDisposed) throw new InvalidArgumentError(`${what}: gradient for '${name}' was already disposed`);
    out.push([name, g]);
  }
  return out;
}

/**
 * Names whose gradient holds a NaN or ±Inf. One small device read (a vector with one entry per gradient):
 * 0 * x is 0 for every finite x and NaN for NaN and ±Inf, so each entry is 0 or NaN. @internal
 */
export function nonFiniteNames(entries: ReadonlyArray<readonly [string, tf.Tensor]>): string[] {
  if (entries.length === 0) return [];
  // One scope per gradient, so the full-size product is freed before the next one is made.
  const flags = tf.tidy(() =>
    tf.stack(
      entries.map(([, g]) =>
        tf.tidy(() => tf.sum(tf.mul(g.dtype === 'float32' ? g : tf.cast(g, 'float32'), 0))),
      ),
    ),
  );
  const values = flags.dataSync();
  flags.dispose();
  const bad: string[] = [];
  entries.forEach(([name], i) => {
    if (!Number.isFinite(values[i] as number)) bad.push(name);
  });
  return bad;
}

/** `a, b, c and 4 more` for error messages. @internal */
export function listNames(names: readonly string[], max = 5): string {
  const shown = names
    .slice(0, max)
    .map((n) => `'${n}'`)
    .join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
