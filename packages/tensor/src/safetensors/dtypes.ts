/**
 * The safetensors element types this package understands, with their byte sizes and the order the
 * official (Rust) implementation lays tensors out in.
 */

/** A safetensors dtype this package reads. Writing covers the same set. */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** The tfjs dtype a safetensors dtype is upcast to when loaded as a tf.Tensor. */
export type LoadedDtype = 'float32' | 'int32' | 'bool';

interface DtypeInfo {
  /** Bytes per element. */
  size: number;
  /**
   * Position in the Rust crate's `Dtype` enum. `serialize` sorts tensors by this, descending, then by
   * name; the enum is declared in increasing alignment order.
   */
  rank: number;
  loaded: LoadedDtype;
}

// Ranks follow the declaration order of `safetensors::Dtype` (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8,
// F8_E5M2, F8_E4M3, F8_E8M0, ..., I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64); only the
// relative order of the dtypes listed here matters.
const INFO: Readonly<Record<SafetensorsDtype, DtypeInfo>> = {
  BOOL: { size: 1, rank: 0, loaded: 'bool' },
  U8: { size: 1, rank: 1, loaded: 'int32' },
  I8: { size: 1, rank: 2, loaded: 'int32' },
  F8_E5M2: { size: 1, rank: 3, loaded: 'float32' },
  F8_E4M3: { size: 1, rank: 4, loaded: 'float32' },
  I16: { size: 2, rank: 5, loaded: 'int32' },
  U16: { size: 2, rank: 6, loaded: 'int32' },
  F16: { size: 2, rank: 7, loaded: 'float32' },
  BF16: { size: 2, rank: 8, loaded: 'float32' },
  I32: { size: 4, rank: 9, loaded: 'int32' },
  U32: { size: 4, rank: 10, loaded: 'int32' },
  F32: { size: 4, rank: 11, loaded: 'float32' },
  F64: { size: 8, rank: 12, loaded: 'float32' },
  I64: { size: 8, rank: 13, loaded: 'int32' },
  U64: { size: 8, rank: 14, loaded: 'int32' },
};

/** Every dtype this package reads and writes, widest first. */
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = (Object.keys(INFO) as SafetensorsDtype[]).sort(
  (a, b) => INFO[b].rank - INFO[a].rank,
);

/** True when `value` names a dtype this package supports. */
export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(INFO, value);
}

/** Bytes per element of `dtype`. */
export function dtypeByteSize(dtype: SafetensorsDtype): number {
  return INFO[dtype].size;
}

/** The tfjs dtype `dtype` becomes when loaded as a tf.Tensor (F16/BF16/F64/F8 -> float32, integers -> int32). */
export function loadedDtype(dtype: SafetensorsDtype): LoadedDtype {
  return INFO[dtype].loaded;
}

/** Sort key of the official writer: larger rank first. */
export function dtypeLayoutRank(dtype: SafetensorsDtype): number {
  return INFO[dtype].rank;
}

/** Compares strings by Unicode code point, as Rust and Python compare strings (UTF-16 order differs above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF: they sort after every other BMP unit.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
