/**
 * The safetensors container format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * (padded with spaces to a multiple of 8), then the data section. Parsing validates everything the
 * official implementation validates (and rejects duplicate keys), with messages that name the file,
 * the tensor, what was expected and what arrived.
 */
import { CorruptFileError, formatShape, InvalidArgumentError } from '../errors.js';
import {
  compareCodePoints,
  dtypeByteSize,
  dtypeLayoutRank,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
} from './dtypes.js';
import {
  defineEntry,
  describeJsonType,
  JsonNumber,
  type JsonObject,
  JsonSyntaxError,
  type JsonValue,
  parseStrictJson,
  truncate,
} from './json.js';

/** The official implementation refuses headers above 100 MB; so do we by default. */
export const MAX_HEADER_BYTES = 100_000_000;

/** The key of the string -> string metadata map in a safetensors header. */
export const METADATA_KEY = '__metadata__';

/** One tensor as the header describes it. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
  /** end - begin = product(shape) * element size. */
  byteLength: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Tensors in data-section order. */
  tensors: SafetensorsTensorInfo[];
  /** The `__metadata__` map, or undefined when the header has none. */
  metadata: Record<string, string> | undefined;
  /** N, the JSON header's byte length (padding included). */
  headerByteLength: number;
  /** Absolute file offset of the data section: 8 + N. */
  dataStart: number;
  /** Size of the data section in bytes. */
  dataByteLength: number;
}

/** A tensor name quoted and shortened for an error message. */
export function quoteName(name: string): string {
  return truncate(JSON.stringify(name), 120);
}

/** Number of elements of `shape`, or undefined when the product exceeds Number.MAX_SAFE_INTEGER. */
export function elementCount(shape: readonly number[]): number | undefined {
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (count > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return count;
}

/**
 * Reads the 8-byte little-endian header length and checks it against the limit and the file size.
 *
 * @throws CorruptFileError for a file shorter than 8 bytes or an impossible header length.
 */
export function readHeaderLength(
  prefix: Uint8Array,
  fileSize: number,
  file: string,
  maxHeaderBytes = MAX_HEADER_BYTES,
): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new CorruptFileError(
      `${file}: expected at least 8 bytes (the header length of a safetensors file), got a file of ${fileSize} bytes`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const length = high * 2 ** 32 + low;
  const shown = high >= 2 ** 21 ? (BigInt(high) * 2n ** 32n + BigInt(low)).toString() : String(length);
  if (length > maxHeaderBytes) {
    throw new CorruptFileError(
      `${file}: header length is ${shown} bytes, more than the limit of ${maxHeaderBytes} bytes (not a safetensors file, or corrupt)`,
    );
  }
  if (length > fileSize - 8) {
    throw new CorruptFileError(
      `${file}: header length is ${shown} bytes but the file has only ${fileSize - 8} bytes after the 8-byte length (truncated or corrupt)`,
    );
  }
  return length;
}

/**
 * Parses and validates the JSON header (the N bytes after the length prefix) of a file of `fileSize`
 * bytes: UTF-8, JSON object, known dtypes, shapes of non-negative safe integers, data_offsets
 * [begin, end] consistent with dtype and shape, tensors covering the data section contiguously
 * (no overlap, no hole, nothing past the end), and string -> string metadata.
 *
 * @throws CorruptFileError naming the file, the tensor, what was expected and what arrived.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerByteLength = headerBytes.length;
  const dataStart = 8 + headerByteLength;
  const dataByteLength = fileSize - dataStart;
  if (dataByteLength < 0) {
    throw new CorruptFileError(
      `${file}: header of ${headerByteLength} bytes does not fit a file of ${fileSize} bytes`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new CorruptFileError(`${file}: expected a UTF-8 JSON header, got bytes that are not valid UTF-8`);
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw new CorruptFileError(`${file}: header is not valid JSON: ${e.message}`);
    }
    throw e;
  }
  if (!(root instanceof Map)) {
    throw new CorruptFileError(
      `${file}: expected the header to be a JSON object, got ${describeJsonType(root)}`,
    );
  }

  let metadata: Record<string, string> | undefined;
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of root) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(value, file);
      continue;
    }
    tensors.push(parseTensorInfo(name, value, file));
  }

  // Rust sorts by (begin, end) before checking contiguity; zero-sized tensors may share an offset.
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  let previous: SafetensorsTensorInfo | undefined;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin > cursor) {
      throw new CorruptFileError(
        `${file}: tensor ${quoteName(t.name)} starts at data offset ${begin}, but the previous tensor ends at ${cursor}: bytes [${cursor}, ${begin}) belong to no tensor (tensors must cover the data section without holes)`,
      );
    }
    if (begin < cursor) {
      throw new CorruptFileError(
        `${file}: tensor ${quoteName(t.name)} has data_offsets [${begin}, ${end}], overlapping tensor ${quoteName(previous?.name ?? '')} which ends at ${cursor}`,
      );
    }
    if (end > dataByteLength) {
      throw new CorruptFileError(
        `${file}: tensor ${quoteName(t.name)} has data_offsets [${begin}, ${end}], past the end of the data section (${dataByteLength} bytes; the file is truncated or the header is corrupt)`,
      );
    }
    cursor = end;
    previous = t;
  }
  if (cursor !== dataByteLength) {
    throw new CorruptFileError(
      `${file}: the data section has ${dataByteLength} bytes but the tensors cover ${cursor} bytes (${dataByteLength - cursor} trailing bytes belong to no tensor)`,
    );
  }
  return { tensors, metadata, headerByteLength, dataStart, dataByteLength };
}

function parseMetadata(value: JsonValue, file: string): Record<string, string> | undefined {
  if (value === null) return undefined;
  if (!(value instanceof Map)) {
    throw new CorruptFileError(
      `${file}: expected ${METADATA_KEY} to be an object of strings, got ${describeJsonType(value)}`,
    );
  }
  const out: Record<string, string> = {};
  for (const [k, v] of value) {
    if (typeof v !== 'string') {
      throw new CorruptFileError(
        `${file}: expected ${METADATA_KEY}[${quoteName(k)}] to be a string, got ${describeJsonType(v)}`,
      );
    }
    defineEntry(out, k, v);
  }
  return out;
}

function parseUnsigned(value: JsonValue | undefined, what: string, file: string): number {
  if (!(value instanceof JsonNumber) || !value.isUnsignedIntegerText()) {
    throw new CorruptFileError(
      `${file}: expected ${what} to be a non-negative integer, got ${describeJsonType(value)}`,
    );
  }
  const n = value.value;
  if (!Number.isSafeInteger(n)) {
    throw new CorruptFileError(
      `${file}: expected ${what} to be at most ${Number.MAX_SAFE_INTEGER}, got ${truncate(value.text, 30)}`,
    );
  }
  return n;
}

function parseTensorInfo(name: string, value: JsonValue, file: string): SafetensorsTensorInfo {
  const q = quoteName(name);
  if (!(value instanceof Map)) {
    throw new CorruptFileError(
      `${file}: expected tensor ${q} to be an object {dtype, shape, data_offsets}, got ${describeJsonType(value)}`,
    );
  }
  const obj: JsonObject = value;
  const dtype = obj.get('dtype');
  if (typeof dtype !== 'string') {
    throw new CorruptFileError(
      `${file}: expected tensor ${q} to have a string dtype, got ${describeJsonType(dtype)}`,
    );
  }
  if (!isSafetensorsDtype(dtype)) {
    throw new CorruptFileError(
      `${file}: tensor ${q} has dtype ${truncate(JSON.stringify(dtype), 40)}, expected one of ${SAFETENSORS_DTYPES.join(', ')}`,
    );
  }
  const rawShape = obj.get('shape');
  if (!Array.isArray(rawShape)) {
    throw new CorruptFileError(
      `${file}: expected tensor ${q} to have a shape array, got ${describeJsonType(rawShape)}`,
    );
  }
  const shape = rawShape.map((d, i) => parseUnsigned(d, `tensor ${q} shape[${i}]`, file));
  const rawOffsets = obj.get('data_offsets');
  if (!Array.isArray(rawOffsets) || rawOffsets.length !== 2) {
    throw new CorruptFileError(
      `${file}: expected tensor ${q} to have data_offsets [begin, end], got ${describeJsonType(rawOffsets)}`,
    );
  }
  const begin = parseUnsigned(rawOffsets[0], `tensor ${q} data_offsets[0]`, file);
  const end = parseUnsigned(rawOffsets[1], `tensor ${q} data_offsets[1]`, file);
  if (end < begin) {
    throw new CorruptFileError(
      `${file}: tensor ${q} has data_offsets [${begin}, ${end}]: expected end >= begin`,
    );
  }
  const count = elementCount(shape);
  const byteLength = count === undefined ? undefined : count * dtypeByteSize(dtype);
  if (byteLength === undefined || byteLength > Number.MAX_SAFE_INTEGER) {
    throw new CorruptFileError(
      `${file}: tensor ${q} has shape ${formatShape(shape)}, whose size in bytes overflows`,
    );
  }
  if (end - begin !== byteLength) {
    throw new CorruptFileError(
      `${file}: tensor ${q} (${dtype}, shape ${formatShape(shape)}) needs ${byteLength} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
    );
  }
  return { name, dtype, shape, dataOffsets: [begin, end], byteLength };
}

/** A tensor to lay out: its name, stored dtype and shape. */
export interface LayoutEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
}

/**
 * Orders tensors as the official writer does: by dtype (the Rust `Dtype` enum order, widest first),
 * then by name (code point order).
 */
export function sortForLayout<T extends LayoutEntry>(entries: readonly T[]): T[] {
  return [...entries].sort(
    (a, b) => dtypeLayoutRank(b.dtype) - dtypeLayoutRank(a.dtype) || compareCodePoints(a.name, b.name),
  );
}

/** Throws InvalidArgumentError unless `s` is well-formed UTF-16 (no lone surrogates), which JSON in UTF-8 needs. */
export function assertWellFormed(what: string, s: string): void {
  if (/[\uD800-\uDFFF]/u.test(s)) {
    throw new InvalidArgumentError(
      `${what}: expected a well-formed Unicode string, got one with a lone surrogate: ${truncate(JSON.stringify(s), 80)}`,
    );
  }
}

/** The result of laying out a file: the header bytes (length prefix included) and each tensor's place. */
export interface EncodedHeader {
  /** 8-byte length prefix followed by the space-padded JSON header. */
  bytes: Uint8Array;
  /** The entries in file order with their data offsets. */
  tensors: Array<LayoutEntry & { dataOffsets: [number, number]; byteLength: number }>;
  /** Size of the data section. */
  dataByteLength: number;
}

/**
 * Lays out `entries` like the official writer (see sortForLayout) and encodes the header: compact JSON
 * with `__metadata__` first (keys sorted by code point), `{"dtype","shape","data_offsets"}` per tensor,
 * padded with spaces to a multiple of 8 bytes, behind its 8-byte little-endian length.
 */
export function encodeHeader(
  entries: readonly LayoutEntry[],
  metadata: Readonly<Record<string, string>> | undefined,
): EncodedHeader {
  const ordered = sortForLayout(entries);
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareCodePoints);
    parts.push(
      `${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`,
    );
  }
  let offset = 0;
  const tensors: EncodedHeader['tensors'] = [];
  for (const e of ordered) {
    const count = elementCount(e.shape);
    if (count === undefined) {
      throw new InvalidArgumentError(
        `tensor ${quoteName(e.name)}: shape ${formatShape(e.shape)} is too large`,
      );
    }
    const byteLength = count * dtypeByteSize(e.dtype);
    const dataOffsets: [number, number] = [offset, offset + byteLength];
    offset += byteLength;
    tensors.push({ ...e, dataOffsets, byteLength });
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${dataOffsets[0]},${dataOffsets[1]}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, padded % 2 ** 32, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length);
  return { bytes, tensors, dataByteLength: offset };
}
