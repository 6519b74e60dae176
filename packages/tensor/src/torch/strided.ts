/**
 * Strided views: PyTorch saves a tensor as (storage, offset, size, stride), so a transpose or a slice is
 * stored as the whole storage plus its view. These helpers find the byte range a view reaches and copy it
 * into C order (row-major, contiguous), which is what safetensors and tfjs hold.
 */

/** True when `stride` is the C-order stride of `shape` (dimensions of size 1 may have any stride). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i] as number;
    if (d === 0) return true;
    if (d !== 1 && stride[i] !== expected) return false;
    expected *= d;
  }
  return true;
}

/** Elements from the view's first to its last element, inclusive: how much of the storage it spans. */
export function viewSpan(shape: readonly number[], stride: readonly number[]): number {
  let last = 0;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as number;
    if (d === 0) return 0;
    last += (d - 1) * (stride[i] as number);
  }
  return last + 1;
}

/** Typed arrays of one element, or of one 32-bit word when elements are 8 bytes (copying words keeps NaN bits). */
function unitView(
  bytes: Uint8Array,
  elementSize: number,
): { units: Uint8Array | Uint16Array | Uint32Array; per: number } {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (elementSize % 4 === 0) {
    return {
      units: new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4),
      per: elementSize / 4,
    };
  }
  if (elementSize === 2) {
    return { units: new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2), per: 1 };
  }
  return { units: bytes, per: elementSize };
}

/**
 * Copies a strided view into a new C-order buffer. `span` holds the storage's elements from the view's
 * first element on (viewSpan(shape, stride) elements of `elementSize` bytes); element (i0, i1, ...) of the
 * view is at sum(ik * stride[k]) in it. Bounds were checked when the view was read from the file.
 */
export function gatherStrided(
  span: Uint8Array,
  shape: readonly number[],
  stride: readonly number[],
  elementSize: number,
): Uint8Array {
  let count = 1;
  for (const d of shape) count *= d;
  const out = new Uint8Array(count * elementSize);
  if (count === 0) return out;
  const src = unitView(span, elementSize);
  const dst = unitView(out, elementSize);
  const per = src.per;
  const rank = shape.length;
  if (rank === 0) {
    out.set(span.subarray(0, elementSize));
    return out;
  }
  const inner = shape[rank - 1] as number;
  const innerStride = (stride[rank - 1] as number) * per;
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  let o = 0;
  const s = src.units;
  const t = dst.units;
  for (;;) {
    // One innermost row.
    let p = base;
    if (per === 1) {
      for (let j = 0; j < inner; j++, p += innerStride) t[o++] = s[p] as number;
    } else {
      for (let j = 0; j < inner; j++, p += innerStride)
        for (let w = 0; w < per; w++) t[o++] = s[p + w] as number;
    }
    // Advance the outer index like an odometer.
    let k = rank - 2;
    while (k >= 0) {
      index[k] = (index[k] as number) + 1;
      base += (stride[k] as number) * per;
      if ((index[k] as number) < (shape[k] as number)) break;
      base -= (shape[k] as number) * (stride[k] as number) * per;
      index[k] = 0;
      k--;
    }
    if (k < 0) return out;
  }
}
