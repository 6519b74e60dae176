/**
 * Bounds on what reading a PyTorch checkpoint may cost. A hostile or damaged file meets one of these and
 * fails with a CorruptFileError naming the limit, instead of taking unbounded memory or time.
 */
import { InvalidArgumentError } from '../errors.js';

export interface TorchReadLimits {
  /** Largest data.pkl, in bytes (default 64 MiB; a 14B-parameter state dict's is under 1 MiB). */
  maxPickleBytes: number;
  /** Largest number of memo entries (default 1,000,000). */
  maxMemoEntries: number;
  /** Largest number of values on the unpickler's stack, and of open MARKs (default 100,000). */
  maxStackDepth: number;
  /** Longest string (a key, a global's name), in bytes (default 1 MiB). */
  maxStringBytes: number;
  /** Most items added to dicts, lists and tuples in total, and most values visited when listing (default 10,000,000). */
  maxEntries: number;
  /**
   * Most tensor names a checkpoint may list (default 100,000; a 400B-parameter model has about 1,200). A
   * container referenced twice lists its tensors under both paths, so a small hostile pickle could
   * otherwise ask for billions of names.
   */
  maxTensors: number;
  /** Deepest nesting of dicts and lists (default 100). */
  maxNesting: number;
  /**
   * Largest tensor, in bytes, that reaches more elements than its storage holds (a stride-0 expand, or
   * overlapping strides); readRaw materialises it, so a tiny file could otherwise ask for terabytes
   * (default 256 MiB). Ordinary tensors are bounded by their storage, and so by the file.
   */
  maxExpandedBytes: number;
  /** Most entries in the zip archive (default 1,000,000). */
  maxZipEntries: number;
  /** Largest zip central directory, in bytes (default 128 MiB). */
  maxDirectoryBytes: number;
}

export const DEFAULT_TORCH_LIMITS: Readonly<TorchReadLimits> = Object.freeze({
  maxPickleBytes: 64 * 1024 * 1024,
  maxMemoEntries: 1_000_000,
  maxStackDepth: 100_000,
  maxStringBytes: 1024 * 1024,
  maxEntries: 10_000_000,
  maxTensors: 100_000,
  maxNesting: 100,
  maxExpandedBytes: 256 * 1024 * 1024,
  maxZipEntries: 1_000_000,
  maxDirectoryBytes: 128 * 1024 * 1024,
});

/**
 * The defaults with `given` applied.
 *
 * @throws InvalidArgumentError for an unknown key or a value that is not a positive safe integer.
 */
export function resolveTorchLimits(given: Partial<TorchReadLimits> | undefined): TorchReadLimits {
  const out: TorchReadLimits = { ...DEFAULT_TORCH_LIMITS };
  for (const [key, value] of Object.entries(given ?? {})) {
    if (!Object.hasOwn(DEFAULT_TORCH_LIMITS, key)) {
      throw new InvalidArgumentError(
        `limits: unknown key ${JSON.stringify(key)}, expected one of ${Object.keys(DEFAULT_TORCH_LIMITS).join(', ')}`,
      );
    }
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new InvalidArgumentError(`limits.${key}: expected a positive integer, got ${String(value)}`);
    }
    out[key as keyof TorchReadLimits] = value as number;
  }
  return out;
}
