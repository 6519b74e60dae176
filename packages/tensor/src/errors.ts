import type { Tensor } from '@tensorflow/tfjs-core';

/** Base class of every error prfl throws on purpose: bad input, a corrupt file, a backend that will not start. */
export class PrflError extends Error {
  override name = 'PrflError';
}

/** An argument has the wrong shape, dtype or value. The message names the argument, what was expected and what arrived. */
export class InvalidArgumentError extends PrflError {
  override name = 'InvalidArgumentError';
}

/** A file (safetensors, JSON, JSONL, checkpoint) is malformed, truncated or inconsistent. */
export class CorruptFileError extends PrflError {
  override name = 'CorruptFileError';
}

/** A requested compute backend could not be started; the message says why. */
export class BackendUnavailableError extends PrflError {
  override name = 'BackendUnavailableError';
}

/** Shape as text: `[2, 3, 4]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Checks a tensor's rank and dimensions. `expected` holds a number for a fixed dimension and `null` (or a
 * name) for a free one; names bind across calls through `bindings`, so `['B', 'N', 'D']` twice makes
 * both B's and both N's agree.
 *
 * @throws InvalidArgumentError naming `what`, the expected pattern and the shape that arrived.
 */
export function assertShape(
  what: string,
  tensor: Pick<Tensor, 'shape'>,
  expected: ReadonlyArray<number | string | null>,
  bindings: Map<string, number> = new Map(),
): void {
  const got = tensor.shape;
  const pattern = `[${expected.map((e) => (e === null ? '?' : String(e))).join(', ')}]`;
  if (got.length !== expected.length) {
    throw new InvalidArgumentError(
      `${what}: expected rank ${expected.length} ${pattern}, got rank ${got.length} ${formatShape(got)}`,
    );
  }
  expected.forEach((e, i) => {
    const d = got[i] as number;
    if (e === null) return;
    if (typeof e === 'number') {
      if (d !== e) {
        throw new InvalidArgumentError(
          `${what}: expected shape ${pattern}, got ${formatShape(got)} (dimension ${i})`,
        );
      }
      return;
    }
    const bound = bindings.get(e);
    if (bound === undefined) bindings.set(e, d);
    else if (bound !== d) {
      throw new InvalidArgumentError(
        `${what}: dimension ${i} (${e}) is ${d} but ${e} = ${bound} elsewhere; expected ${pattern}, got ${formatShape(got)}`,
      );
    }
  });
}

/** Throws unless `value` is a finite number within [min, max]. */
export function assertFiniteInRange(what: string, value: number, min = -Infinity, max = Infinity): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${what}: expected a finite number in [${min}, ${max}], got ${String(value)}`,
    );
  }
}
