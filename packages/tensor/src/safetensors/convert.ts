/**
 * Bit-exact conversions between float32 and the narrow float formats safetensors stores (F16, BF16,
 * F8), and little-endian byte handling.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** True on little-endian platforms (all mainstream ones); safetensors data is little-endian. */
export function isLittleEndian(): boolean {
  return LITTLE_ENDIAN;
}

/**
 * Copies `bytes` into a fresh, aligned ArrayBuffer, reversing each `elementSize`-byte group on a
 * big-endian platform so typed arrays over the result read little-endian data correctly.
 */
export function copyLittleEndian(bytes: Uint8Array, elementSize: number): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  if (!LITTLE_ENDIAN && elementSize > 1) swapBytesInPlace(out, elementSize);
  return out.buffer;
}

/** Reverses each `elementSize`-byte group of `bytes` in place. */
export function swapBytesInPlace(bytes: Uint8Array, elementSize: number): void {
  for (let i = 0; i + elementSize <= bytes.length; i += elementSize) {
    for (let a = i, b = i + elementSize - 1; a < b; a++, b--) {
      const t = bytes[a] as number;
      bytes[a] = bytes[b] as number;
      bytes[b] = t;
    }
  }
}

/** The little-endian bytes of a typed array (a view when the platform is little-endian, else a swapped copy). */
export function littleEndianBytes(view: ArrayBufferView, elementSize: number): Uint8Array {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (LITTLE_ENDIAN || elementSize === 1) return bytes;
  const copy = bytes.slice();
  swapBytesInPlace(copy, elementSize);
  return copy;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE-754 bit pattern of a float32 value. */
export function float32Bits(value: number): number {
  f32[0] = value;
  return u32[0] as number;
}

/** The float32 value of a 32-bit pattern. */
export function float32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0] as number;
}

/**
 * float32 bits -> float16 bits, rounding to nearest even (as PyTorch and the `half` crate do).
 * Overflow gives infinity; NaN gives the quiet NaN 0x7E00 with the input's sign (PyTorch's choice).
 */
export function f32BitsToF16Bits(bits: number): number {
  const x = bits >>> 0;
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 (the midpoint above 65504) rounds to inf
  if (abs >= 0x38800000) {
    // Normal float16: rebias the exponent (127 -> 15), then round 23 mantissa bits to 10.
    const rebased = abs - 0x38000000;
    return sign | ((rebased + 0xfff + ((rebased >>> 13) & 1)) >>> 13);
  }
  if (abs <= 0x33000000) return sign; // <= 2^-25: rounds to (signed) zero; 2^-25 is a tie to even 0
  // Subnormal float16: value / 2^-24, rounded to nearest even.
  const exponent = abs >>> 23;
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent; // 14..24
  let result = mantissa >>> shift;
  const remainder = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (remainder > half || (remainder === half && (result & 1) === 1)) result++;
  return sign | result;
}

/**
 * float32 bits -> bfloat16 bits, rounding to nearest even. NaN gives the quiet NaN 0x7FC0 with the
 * input's sign (PyTorch 1.13 writes 0xFFFF for every NaN; both are NaN).
 */
export function f32BitsToBf16Bits(bits: number): number {
  const x = bits >>> 0;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

/** float16 bits -> float32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: normalise the mantissa.
  let e = 113;
  let m = mantissa;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;

/** float32 bit patterns of all 65536 float16 values (built once, 256 KB). */
function f16ToF32Table(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** float8 E4M3 (the "FN" variant: no infinities, NaN = S.1111.111) bits -> float32 value. */
export function f8e4m3ToFloat(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exponent = (b >>> 3) & 0xf;
  const mantissa = b & 0x7;
  if (exponent === 0xf && mantissa === 0x7) return Number.NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/** Decodes little-endian float16 bytes to float32 values. */
export function decodeF16(bytes: Uint8Array, count: number): Float32Array {
  const halves = new Uint16Array(copyLittleEndian(bytes, 2), 0, count);
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  const table = f16ToF32Table();
  for (let i = 0; i < count; i++) outBits[i] = table[halves[i] as number] as number;
  return out;
}

/** Decodes little-endian bfloat16 bytes to float32 values (exact: bfloat16 is float32's upper half). */
export function decodeBf16(bytes: Uint8Array, count: number): Float32Array {
  const halves = new Uint16Array(copyLittleEndian(bytes, 2), 0, count);
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) outBits[i] = ((halves[i] as number) << 16) >>> 0;
  return out;
}

/** Decodes float8 bytes (E5M2 or E4M3) to float32 values. */
export function decodeF8(bytes: Uint8Array, count: number, format: 'F8_E5M2' | 'F8_E4M3'): Float32Array {
  const table = new Float32Array(256);
  if (format === 'F8_E5M2') {
    // E5M2 is the upper byte of a float16.
    const bits = new Uint32Array(table.buffer);
    for (let b = 0; b < 256; b++) bits[b] = f16BitsToF32Bits(b << 8);
  } else {
    for (let b = 0; b < 256; b++) table[b] = f8e4m3ToFloat(b);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[bytes[i] as number] as number;
  return out;
}

/** Encodes float32 values as float16 bits (round to nearest even). */
export function encodeF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToF16Bits(bits[i] as number);
  return out;
}

/** Encodes float32 values as bfloat16 bits (round to nearest even). */
export function encodeBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i] as number;
    out[i] =
      (x & 0x7fffffff) > 0x7f800000
        ? ((x >>> 16) & 0x8000) | 0x7fc0
        : Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
  }
  return out;
}
