/**
 * Writing safetensors files byte-identical to the official implementation: same tensor order, same
 * compact JSON header, same padding. Float tensors can be stored as F32, F16, BF16 or F64 (rounding to
 * nearest even), int32 tensors as any integer dtype that holds their values, bool tensors as BOOL or U8.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatShape, InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { encodeBf16, encodeF16, isLittleEndian, littleEndianBytes } from './convert.js';
import { dtypeByteSize, isSafetensorsDtype, SAFETENSORS_DTYPES, type SafetensorsDtype } from './dtypes.js';
import {
  assertWellFormed,
  type EncodedHeader,
  elementCount,
  encodeHeader,
  METADATA_KEY,
  quoteName,
} from './format.js';

/** A tensor given as stored data: `data` is either the little-endian bytes or the dtype's typed array. */
export interface RawTensorInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /**
   * Uint8Array: the stored bytes (little-endian). Otherwise the dtype's natural typed array: Float64Array
   * (F64), Float32Array (F32), Uint16Array of bit patterns (F16, BF16, U16), BigInt64Array (I64),
   * BigUint64Array (U64), Int32Array (I32), Uint32Array (U32), Int16Array (I16), Int8Array (I8).
   */
  data: ArrayBufferView;
}

/** A tensor to write: a tf.Tensor (float32, int32 or bool) or raw stored data. */
export type TensorInput = tf.Tensor | RawTensorInput;

/** Tensors to write, by name. */
export type TensorMap = Readonly<Record<string, TensorInput>> | ReadonlyMap<string, TensorInput>;

/** Dtypes a float32 tf.Tensor can be stored as. */
export type FloatStorageDtype = 'F32' | 'F16' | 'BF16' | 'F64';

/** Options of serializeSafetensors / saveSafetensors. */
export interface SerializeOptions {
  /** The header's `__metadata__` (string -> string). Written only when given. */
  metadata?: Readonly<Record<string, string>>;
  /** Stored dtype of every float32 tf.Tensor (default F32). Integer and bool tensors are not affected. */
  dtype?: FloatStorageDtype;
  /**
   * Stored dtype per tensor name, overriding `dtype`: float32 -> F32/F16/BF16/F64; int32 -> I32 (default),
   * I64, I16, I8, U8, U16, U32, U64 (values must fit); bool -> BOOL (default) or U8. A raw tensor keeps
   * its own dtype (naming another one here is an error).
   */
  dtypes?: Readonly<Record<string, SafetensorsDtype>>;
}

const FLOAT_STORAGE: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16', 'F64'];
const INT_STORAGE: readonly SafetensorsDtype[] = ['I32', 'I64', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64'];
const BOOL_STORAGE: readonly SafetensorsDtype[] = ['BOOL', 'U8'];

/** A tensor ready to be encoded: resolved stored dtype and shape. */
export interface PlannedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  byteLength: number;
  input: TensorInput;
}

function isTfTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

function naturalArrayName(dtype: SafetensorsDtype): string {
  switch (dtype) {
    case 'F64':
      return 'Float64Array';
    case 'F32':
      return 'Float32Array';
    case 'F16':
    case 'BF16':
    case 'U16':
      return 'Uint16Array';
    case 'I64':
      return 'BigInt64Array';
    case 'U64':
      return 'BigUint64Array';
    case 'I32':
      return 'Int32Array';
    case 'U32':
      return 'Uint32Array';
    case 'I16':
      return 'Int16Array';
    case 'I8':
      return 'Int8Array';
    default:
      return 'Uint8Array';
  }
}

function entriesOf(tensors: TensorMap): Array<[string, TensorInput]> {
  if (tensors instanceof Map) return [...tensors.entries()];
  if (typeof tensors !== 'object' || tensors === null) {
    throw new InvalidArgumentError(
      `tensors: expected a record or Map of name -> tensor, got ${tensors === null ? 'null' : typeof tensors}`,
    );
  }
  return Object.entries(tensors as Record<string, TensorInput>);
}

/**
 * Validates names, inputs and requested dtypes, and resolves each tensor's stored dtype.
 *
 * @throws InvalidArgumentError naming the tensor, the expected and the received value.
 */
export function planTensors(tensors: TensorMap, options: SerializeOptions = {}): PlannedTensor[] {
  const fileDtype = options.dtype ?? 'F32';
  if (!FLOAT_STORAGE.includes(fileDtype)) {
    throw new InvalidArgumentError(
      `dtype: expected the stored dtype of float tensors, one of ${FLOAT_STORAGE.join(', ')}, got ${JSON.stringify(fileDtype)}`,
    );
  }
  const perTensor = options.dtypes ?? {};
  const entries = entriesOf(tensors);
  const names = new Set(entries.map(([n]) => n));
  for (const n of Object.keys(perTensor)) {
    if (!names.has(n)) {
      throw new InvalidArgumentError(
        `dtypes: names tensor ${quoteName(n)}, which is not among the tensors to write`,
      );
    }
  }
  return entries.map(([name, input]): PlannedTensor => {
    if (typeof name !== 'string')
      throw new InvalidArgumentError(`tensor names must be strings, got ${typeof name}`);
    if (name === METADATA_KEY) {
      throw new InvalidArgumentError(`tensor name ${METADATA_KEY} is reserved for the header's metadata`);
    }
    assertWellFormed('tensor name', name);
    const q = quoteName(name);
    const requested = Object.hasOwn(perTensor, name) ? perTensor[name] : undefined;
    if (requested !== undefined && !isSafetensorsDtype(requested)) {
      throw new InvalidArgumentError(
        `dtypes[${q}]: expected one of ${SAFETENSORS_DTYPES.join(', ')}, got ${JSON.stringify(requested)}`,
      );
    }
    if (isTfTensor(input)) {
      if (input.isDisposed)
        throw new InvalidArgumentError(`tensor ${q}: expected a live tensor, got a disposed one`);
      let allowed: readonly SafetensorsDtype[];
      let dtype: SafetensorsDtype;
      if (input.dtype === 'float32') {
        allowed = FLOAT_STORAGE;
        dtype = requested ?? fileDtype;
      } else if (input.dtype === 'int32') {
        allowed = INT_STORAGE;
        dtype = requested ?? 'I32';
      } else if (input.dtype === 'bool') {
        allowed = BOOL_STORAGE;
        dtype = requested ?? 'BOOL';
      } else {
        throw new InvalidArgumentError(
          `tensor ${q}: expected a float32, int32 or bool tensor, got dtype ${input.dtype}`,
        );
      }
      if (!allowed.includes(dtype)) {
        throw new InvalidArgumentError(
          `dtypes[${q}]: a ${input.dtype} tensor can be stored as ${allowed.join(', ')}, got ${dtype}`,
        );
      }
      return { name, dtype, shape: [...input.shape], byteLength: input.size * dtypeByteSize(dtype), input };
    }
    if (typeof input !== 'object' || input === null || !('dtype' in input) || !('data' in input)) {
      throw new InvalidArgumentError(
        `tensor ${q}: expected a tf.Tensor or {dtype, shape, data}, got ${input === null ? 'null' : typeof input}`,
      );
    }
    const raw = input as RawTensorInput;
    if (!isSafetensorsDtype(raw.dtype)) {
      throw new InvalidArgumentError(
        `tensor ${q}: expected dtype one of ${SAFETENSORS_DTYPES.join(', ')}, got ${JSON.stringify(raw.dtype)}`,
      );
    }
    if (requested !== undefined && requested !== raw.dtype) {
      throw new InvalidArgumentError(
        `dtypes[${q}]: a raw tensor is written in its own dtype ${raw.dtype}; got a request for ${requested}`,
      );
    }
    if (!Array.isArray(raw.shape) || !raw.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(
        `tensor ${q}: expected shape to be an array of non-negative integers, got ${JSON.stringify(raw.shape)}`,
      );
    }
    const count = elementCount(raw.shape);
    const size = dtypeByteSize(raw.dtype);
    if (count === undefined || count * size > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError(`tensor ${q}: shape ${formatShape(raw.shape)} is too large`);
    }
    const data = raw.data;
    if (!ArrayBuffer.isView(data)) {
      throw new InvalidArgumentError(
        `tensor ${q}: expected data to be a Uint8Array or ${naturalArrayName(raw.dtype)}, got ${Object.prototype.toString.call(data)}`,
      );
    }
    const natural = naturalArrayName(raw.dtype);
    const kind = Object.prototype.toString.call(data).slice(8, -1);
    if (kind !== 'Uint8Array' && kind !== natural) {
      throw new InvalidArgumentError(
        `tensor ${q}: expected data for ${raw.dtype} to be a Uint8Array or ${natural}, got ${kind}`,
      );
    }
    if (data.byteLength !== count * size) {
      throw new InvalidArgumentError(
        `tensor ${q}: ${raw.dtype} shape ${formatShape(raw.shape)} needs ${count * size} bytes (${count} elements), got ${data.byteLength} bytes`,
      );
    }
    return { name, dtype: raw.dtype, shape: [...raw.shape], byteLength: count * size, input };
  });
}

function rangeError(
  name: string,
  index: number,
  value: number,
  dtype: SafetensorsDtype,
  range: string,
): never {
  throw new InvalidArgumentError(
    `tensor ${quoteName(name)}: element ${index} is ${value}, which does not fit ${dtype} (${range})`,
  );
}

function narrowInts(
  name: string,
  values: Int32Array,
  dtype: SafetensorsDtype,
  min: number,
  max: number,
  out: Int8Array | Uint8Array | Int16Array | Uint16Array | Uint32Array,
): Uint8Array {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < min || v > max) rangeError(name, i, v, dtype, `${min}..${max}`);
    out[i] = v;
  }
  return littleEndianBytes(out, out.BYTES_PER_ELEMENT);
}

/** Encodes one planned tensor to its stored little-endian bytes (reads tf data asynchronously). */
export async function encodeTensor(planned: PlannedTensor): Promise<Uint8Array> {
  const { name, dtype, input } = planned;
  if (!isTfTensor(input)) {
    const data = input.data;
    const elementSize =
      Object.prototype.toString.call(data) === '[object Uint8Array]' ? 1 : dtypeByteSize(dtype);
    return littleEndianBytes(data, elementSize);
  }
  const values = await input.data();
  if (values instanceof Float32Array) {
    switch (dtype) {
      case 'F32':
        return littleEndianBytes(values, 4);
      case 'F16':
        return littleEndianBytes(encodeF16(values), 2);
      case 'BF16':
        return littleEndianBytes(encodeBf16(values), 2);
      default:
        return littleEndianBytes(Float64Array.from(values), 8);
    }
  }
  if (values instanceof Int32Array) {
    switch (dtype) {
      case 'I32':
        return littleEndianBytes(values, 4);
      case 'I64':
      case 'U64': {
        const words = new Int32Array(values.length * 2);
        for (let i = 0; i < values.length; i++) {
          const v = values[i] as number;
          if (dtype === 'U64' && v < 0) rangeError(name, i, v, dtype, '0..2^64-1');
          words[2 * i] = v;
          words[2 * i + 1] = v >> 31;
        }
        if (isLittleEndian()) return new Uint8Array(words.buffer);
        // Big-endian platform: let BigInt64Array order the bytes, then swap them to little-endian.
        return littleEndianBytes(
          BigInt64Array.from(values, (v) => BigInt(v)),
          8,
        );
      }
      case 'I16':
        return narrowInts(name, values, dtype, -32768, 32767, new Int16Array(values.length));
      case 'U16':
        return narrowInts(name, values, dtype, 0, 65535, new Uint16Array(values.length));
      case 'I8':
        return narrowInts(name, values, dtype, -128, 127, new Int8Array(values.length));
      case 'U8':
        return narrowInts(name, values, dtype, 0, 255, new Uint8Array(values.length));
      default:
        return narrowInts(name, values, dtype, 0, 2147483647, new Uint32Array(values.length));
    }
  }
  // bool: Uint8Array of 0/1.
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  return out;
}

/** Lays out planned tensors and encodes the header (see encodeHeader). */
export function layoutFile(
  planned: readonly PlannedTensor[],
  metadata: Readonly<Record<string, string>> | undefined,
): EncodedHeader & { order: PlannedTensor[] } {
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidArgumentError(
        `metadata: expected a record of strings, got ${JSON.stringify(metadata)}`,
      );
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new InvalidArgumentError(
          `metadata[${quoteName(k)}]: expected a string, got ${typeof v} (safetensors metadata is string -> string)`,
        );
      }
      assertWellFormed(`metadata key ${quoteName(k)}`, k);
      assertWellFormed(`metadata[${quoteName(k)}]`, v);
    }
  }
  const header = encodeHeader(planned, metadata);
  const byName = new Map(planned.map((p) => [p.name, p]));
  const order = header.tensors.map((t) => byName.get(t.name) as PlannedTensor);
  return { ...header, order };
}

/**
 * Serializes tensors (tf.Tensors and raw {dtype, shape, data}) to the bytes of a safetensors file, laid
 * out exactly as the official implementation does. The tensors are not disposed.
 *
 * @throws InvalidArgumentError for a bad name, dtype request, raw tensor or a value that does not fit.
 */
export async function serializeSafetensors(
  tensors: TensorMap,
  options: SerializeOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const planned = planTensors(tensors, options);
  const layout = layoutFile(planned, options.metadata);
  const out = new Uint8Array(layout.bytes.length + layout.dataByteLength);
  out.set(layout.bytes);
  let offset = layout.bytes.length;
  for (const p of layout.order) {
    out.set(await encodeTensor(p), offset);
    offset += p.byteLength;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file in Node, atomically (temporary file in the same folder, fsync,
 * rename): on any error nothing is left behind and an existing file at `path` is untouched. Tensors are
 * encoded and written one at a time, so the whole file is never held in memory. Resolves to the file size.
 *
 * @throws InvalidArgumentError as serializeSafetensors, or when the folder cannot be written.
 */
export async function saveSafetensors(
  path: string,
  tensors: TensorMap,
  options: SerializeOptions = {},
): Promise<number> {
  const planned = planTensors(tensors, options);
  const layout = layoutFile(planned, options.metadata);
  await writeFileAtomic(path, async (write) => {
    await write(layout.bytes);
    for (const p of layout.order) await write(await encodeTensor(p));
  });
  return layout.bytes.length + layout.dataByteLength;
}
