import type { BackendName } from '../backend.js';
import { BACKEND_NAMES } from '../backend.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * The backends a test suite runs on: `PRFL_TEST_BACKENDS` (comma separated) or cpu and wasm, the two
 * that every CI run exercises. WebGPU has its own suite (it needs a Vulkan driver).
 */
export function backendsUnderTest(): BackendName[] {
  const raw = typeof process !== 'undefined' ? process.env.PRFL_TEST_BACKENDS : undefined;
  if (!raw) return ['cpu', 'wasm'];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!BACKEND_NAMES.includes(n as BackendName)) {
      throw new InvalidArgumentError(
        `PRFL_TEST_BACKENDS: expected names from ${BACKEND_NAMES.join(', ')}, got ${n}`,
      );
    }
  }
  return names as BackendName[];
}

/** Max absolute difference between two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length)
    throw new InvalidArgumentError(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/**
 * Largest difference between same-named arrays over the largest magnitude of the first one's array
 * (at least `floor`): how far two trainings' weights drifted apart, tensor by tensor.
 */
export function maxRelDiffByName(
  a: ReadonlyMap<string, ArrayLike<number>>,
  b: ReadonlyMap<string, ArrayLike<number>>,
  floor = 1e-3,
): number {
  let worst = 0;
  for (const [k, x] of a) {
    const y = b.get(k);
    if (y === undefined || y.length !== x.length) return Number.POSITIVE_INFINITY;
    let scale = floor;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i] as number));
    for (let i = 0; i < x.length; i++)
      worst = Math.max(worst, Math.abs((x[i] as number) - (y[i] as number)) / scale);
  }
  return worst;
}
