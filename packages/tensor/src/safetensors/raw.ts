/**
 * Raw tensors (dtype, shape, stored bytes) and their two decodings: exact typed arrays, and tf.Tensors
 * in the dtypes tfjs has (float32, int32, bool).
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '../errors.js';
import { copyLittleEndian, decodeBf16, decodeF8, decodeF16 } from './convert.js';
import { dtypeByteSize, isSafetensorsDtype, SAFETENSORS_DTYPES, type SafetensorsDtype } from './dtypes.js';
import { elementCount, quoteName } from './format.js';

/** A tensor as stored in a safetensors file: dtype, shape and the little-endian element bytes. */
export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Element bytes exactly as stored (little-endian, C order); byteLength = product(shape) * element size. */
  data: Uint8Array;
}

/** The exact decoding of a raw tensor (see decodeRaw). */
export type DecodedArray =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/**
 * Checks that `raw` has a supported dtype, a shape of non-negative safe integers and exactly
 * product(shape) * element size bytes.
 *
 * @throws InvalidArgumentError naming `what`.
 */
export function assertRawTensor(what: string, raw: RawTensor): number {
  if (!isSafetensorsDtype(raw.dtype)) {
    throw new InvalidArgumentError(
      `${what}: expected dtype one of ${SAFETENSORS_DTYPES.join(', ')}, got ${JSON.stringify(raw.dtype)}`,
    );
  }
  if (!Array.isArray(raw.shape) || !raw.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InvalidArgumentError(
      `${what}: expected shape to be an array of non-negative integers, got ${JSON.stringify(raw.shape)}`,
    );
  }
  const count = elementCount(raw.shape);
  const expected = count === undefined ? undefined : count * dtypeByteSize(raw.dtype);
  if (expected === undefined || !(raw.data instanceof Uint8Array) || raw.data.byteLength !== expected) {
    throw new InvalidArgumentError(
      `${what}: ${raw.dtype} shape ${formatShape(raw.shape)} needs ${expected ?? 'too many'} bytes, got ${
        raw.data instanceof Uint8Array
          ? `${raw.data.byteLength} bytes`
          : Object.prototype.toString.call(raw.data)
      }`,
    );
  }
  return count as number;
}

/**
 * Decodes a raw tensor to a typed array without losing anything: F64 -> Float64Array; F32, F16,
 * BF16, F8 -> Float32Array (every F16/BF16/F8 value is exactly a float32); I64 -> BigInt64Array;
 * U64 -> BigUint64Array; I32/U32/I16/U16/I8/U8 -> the matching typed array; BOOL -> Uint8Array of 0/1.
 * The result never shares memory with `raw.data`.
 */
export function decodeRaw(raw: RawTensor): DecodedArray {
  const count = assertRawTensor('decodeRaw', raw);
  const bytes = raw.data;
  switch (raw.dtype) {
    case 'F64':
      return new Float64Array(copyLittleEndian(bytes, 8));
    case 'F32':
      return new Float32Array(copyLittleEndian(bytes, 4));
    case 'F16':
      return decodeF16(bytes, count);
    case 'BF16':
      return decodeBf16(bytes, count);
    case 'F8_E5M2':
    case 'F8_E4M3':
      return decodeF8(bytes, count, raw.dtype);
    case 'I64':
      return new BigInt64Array(copyLittleEndian(bytes, 8));
    case 'U64':
      return new BigUint64Array(copyLittleEndian(bytes, 8));
    case 'I32':
      return new Int32Array(copyLittleEndian(bytes, 4));
    case 'U32':
      return new Uint32Array(copyLittleEndian(bytes, 4));
    case 'I16':
      return new Int16Array(copyLittleEndian(bytes, 2));
    case 'U16':
      return new Uint16Array(copyLittleEndian(bytes, 2));
    case 'I8':
      return new Int8Array(copyLittleEndian(bytes, 1));
    case 'U8':
      return new Uint8Array(copyLittleEndian(bytes, 1));
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = bytes[i] === 0 ? 0 : 1;
      return out;
    }
  }
}

function outOfInt32(
  name: string,
  dtype: SafetensorsDtype,
  index: number,
  value: string,
): InvalidArgumentError {
  return new InvalidArgumentError(
    `tensor ${quoteName(name)} (${dtype}): element ${index} is ${value}, outside the int32 range tfjs tensors hold; use readRaw() and decodeRaw() for the exact values`,
  );
}

/** 64-bit integers (as int32 pairs) -> int32, checking the range. */
function narrow64(name: string, raw: RawTensor, count: number, signed: boolean): Int32Array {
  const words = new Int32Array(copyLittleEndian(raw.data, 8));
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const low = words[2 * i] as number;
    const high = words[2 * i + 1] as number;
    const ok = signed ? high === low >> 31 : high === 0 && low >= 0;
    if (!ok) {
      const value = (BigInt(signed ? high : high >>> 0) << 32n) | BigInt(low >>> 0);
      throw outOfInt32(name, raw.dtype, i, value.toString());
    }
    out[i] = low;
  }
  return out;
}

/**
 * Converts a raw tensor to a tf.Tensor in a dtype tfjs has: F32, F16, BF16, F8 (exact) and F64 (rounded
 * to nearest float32) -> float32; I64, U64, U32 (range-checked), I32, I16, U16, I8, U8 -> int32; BOOL ->
 * bool (any non-zero byte is true).
 *
 * @throws InvalidArgumentError naming `name` when an integer does not fit int32.
 */
export function rawToTensor(raw: RawTensor, name = 'tensor'): tf.Tensor {
  const count = assertRawTensor(`tensor ${quoteName(name)}`, raw);
  const shape = raw.shape;
  switch (raw.dtype) {
    case 'F64': {
      const out = new Float32Array(count);
      out.set(new Float64Array(copyLittleEndian(raw.data, 8)));
      return tf.tensor(out, shape, 'float32');
    }
    case 'F32':
    case 'F16':
    case 'BF16':
    case 'F8_E5M2':
    case 'F8_E4M3':
      return tf.tensor(decodeRaw(raw) as Float32Array, shape, 'float32');
    case 'I64':
    case 'U64':
      return tf.tensor(narrow64(name, raw, count, raw.dtype === 'I64'), shape, 'int32');
    case 'U32': {
      const values = new Int32Array(copyLittleEndian(raw.data, 4));
      for (let i = 0; i < count; i++) {
        const v = values[i] as number;
        if (v < 0) throw outOfInt32(name, raw.dtype, i, String(v >>> 0));
      }
      return tf.tensor(values, shape, 'int32');
    }
    case 'I32':
      return tf.tensor(new Int32Array(copyLittleEndian(raw.data, 4)), shape, 'int32');
    case 'I16':
    case 'U16':
    case 'I8':
    case 'U8': {
      const out = new Int32Array(count);
      out.set(decodeRaw(raw) as Int16Array | Uint16Array | Int8Array | Uint8Array);
      return tf.tensor(out, shape, 'int32');
    }
    case 'BOOL':
      return tf.tensor(decodeRaw(raw) as Uint8Array, shape, 'bool');
  }
}
