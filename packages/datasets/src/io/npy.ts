/**
 * NumPy's .npy format, read and written without NumPy: the magic "\x93NUMPY", a version (1.0: 2-byte
 * header length; 2.0: 4-byte; 3.0: 4-byte and a UTF-8 header), a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded to a multiple of 64 bytes, then the
 * data. Dtypes: float16/32/64, int8/16/32/64, uint8/16/32, bool, either byte order (big-endian is
 * swapped on read). Fortran-ordered arrays are transposed to C order on read. float16 is upcast to
 * float32 (tfjs has no half type).
 */
import { CorruptFileError, formatShape, InvalidArgumentError } from '@prfl/tensor';
import { readFileNamed, writeFileAtomic } from './files.js';
import { previewValue, truncateText } from './preview.js';
import { decodeUtf8 } from './utf8.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** The element types we read and write, by their little-endian descr. */
export type NpyDtype = '<f2' | '<f4' | '<f8' | '|i1' | '<i2' | '<i4' | '<i8' | '|u1' | '<u2' | '<u4' | '|b1';

/** What a typed array of each dtype is after reading. float16 arrives as float32. */
export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

export interface NpyArray {
  /** The dtype as stored (normalised to little-endian notation, e.g. '>f4' reads as '<f4'). */
  dtype: NpyDtype;
  shape: number[];
  /** C-order data; float16 upcast to Float32Array, bool as Uint8Array of 0/1. */
  data: NpyData;
}

interface DtypeInfo {
  size: number;
  read: (buf: ArrayBuffer, count: number) => NpyData;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  '<f2': { size: 2, read: (b, n) => halfToFloat(new Uint16Array(b, 0, n)) },
  '<f4': { size: 4, read: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { size: 8, read: (b, n) => new Float64Array(b, 0, n) },
  '|i1': { size: 1, read: (b, n) => new Int8Array(b, 0, n) },
  '<i2': { size: 2, read: (b, n) => new Int16Array(b, 0, n) },
  '<i4': { size: 4, read: (b, n) => new Int32Array(b, 0, n) },
  '<i8': { size: 8, read: (b, n) => new BigInt64Array(b, 0, n) },
  '|u1': { size: 1, read: (b, n) => new Uint8Array(b, 0, n) },
  '<u2': { size: 2, read: (b, n) => new Uint16Array(b, 0, n) },
  '<u4': { size: 4, read: (b, n) => new Uint32Array(b, 0, n) },
  '|b1': { size: 1, read: (b, n) => boolsToZeroOne(new Uint8Array(b, 0, n)) },
};

/**
 * NumPy's bool is one byte and any nonzero byte is True (np.frombuffer(b'\x9a', bool) is True): the
 * bytes become 0/1 so a bool array reads the same as in NumPy, whatever a writer stored.
 */
function boolsToZeroOne(bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]) bytes[i] = 1;
  return bytes;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function halfToFloat(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const v = h[i] as number;
    const sign = v & 0x8000 ? -1 : 1;
    const exp = (v >> 10) & 0x1f;
    const frac = v & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? Number.NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function floatToHalf(values: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i] as number;
    const x = u[0] as number;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    // Round to nearest even; a carry out of the mantissa correctly bumps the exponent (up to infinity).
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
  }
  return out;
}

/**
 * NumPy refuses headers longer than this by default (np.load's max_header_size, "may not be safe to
 * load securely"); a header of a plain array is about 120 bytes.
 */
export const MAX_NPY_HEADER_BYTES = 10_000;

/** NumPy 2's limit on dimensions (NPY_MAXDIMS). */
const MAX_NPY_RANK = 64;

const HEADER_KEYS = ['descr', 'fortran_order', 'shape'] as const;
type HeaderKey = (typeof HEADER_KEYS)[number];

/** The header as parsed: exactly the three keys, in a Map (no object prototype to reach through keys). */
type NpyHeader = Map<HeaderKey, string | boolean | number[]>;

/**
 * Parses the header dict, a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
 * Only what NumPy writes for a plain array is accepted: string keys, each of descr / fortran_order /
 * shape exactly once, a string descr, True/False, a tuple (or list) of integers. The grammar is flat, so
 * the parser is a loop over tokens with no recursion, whatever the input.
 */
function parseNpyHeader(text: string, file: string): NpyHeader {
  let i = 0;
  const fail = (why: string): never => {
    throw new CorruptFileError(
      `${file}: .npy header is not a valid Python literal (${why} at offset ${i}): ${JSON.stringify(truncateText(text, 120))}`,
    );
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r\f\v'.includes(text[i] as string)) i++;
  };
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) fail(`expected '${c}'`);
    i++;
  };
  const string = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') fail('expected a quoted string');
    const end = text.indexOf(q as string, i + 1);
    if (end < 0) fail('unterminated string');
    const s = text.slice(i + 1, end);
    // NumPy never writes escapes in a plain array's header; refusing them keeps the parser exact.
    if (s.includes('\\')) fail('escape sequence in a string');
    i = end + 1;
    return s;
  };
  const integer = (): number => {
    ws();
    const m = /^-?\d{1,20}L?/.exec(text.slice(i, i + 24));
    if (!m) fail('expected an integer');
    i += (m as RegExpExecArray)[0].length;
    const v = Number.parseInt((m as RegExpExecArray)[0], 10);
    if (!Number.isSafeInteger(v)) fail(`integer ${(m as RegExpExecArray)[0]} is too large`);
    return v;
  };
  const value = (key: HeaderKey): string | boolean | number[] => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') return string();
    if (text.startsWith('True', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('False', i)) {
      i += 5;
      return false;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const dims: number[] = [];
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          return dims;
        }
        if (key === 'descr') fail('structured dtypes (a list of fields) are not supported');
        if (dims.length >= MAX_NPY_RANK) fail(`more than ${MAX_NPY_RANK} dimensions`);
        dims.push(integer());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === '{') fail(`a dict as the value of '${key}'`);
    return fail('unexpected token');
  };
  const header: NpyHeader = new Map();
  expect('{');
  for (;;) {
    ws();
    if (text[i] === '}') {
      i++;
      break;
    }
    const at = i;
    const key = string();
    if (!(HEADER_KEYS as readonly string[]).includes(key)) {
      i = at;
      fail(
        `unknown key ${JSON.stringify(truncateText(key, 40))}; a header has exactly 'descr', 'fortran_order' and 'shape'`,
      );
    }
    if (header.has(key as HeaderKey)) {
      i = at;
      fail(`duplicate key '${key}'`);
    }
    expect(':');
    header.set(key as HeaderKey, value(key as HeaderKey));
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail("expected ',' or '}'");
  }
  ws();
  if (i !== text.length) fail('trailing characters');
  for (const key of HEADER_KEYS) {
    if (!header.has(key))
      throw new CorruptFileError(
        `${file}: .npy header lacks '${key}' (expected 'descr', 'fortran_order' and 'shape'): ${JSON.stringify(truncateText(text, 120))}`,
      );
  }
  return header;
}

/** The header's text: ASCII for versions 1.0 and 2.0 (NumPy writes latin-1, only ASCII for plain arrays), UTF-8 for 3.0. */
function headerText(bytes: Uint8Array, major: number, file: string): string {
  if (major === 3) return decodeUtf8(bytes, `${file}: .npy header`);
  for (let k = 0; k < bytes.length; k++) {
    if ((bytes[k] as number) >= 0x80) {
      throw new CorruptFileError(
        `${file}: .npy header has a non-ASCII byte 0x${(bytes[k] as number).toString(16)} at offset ${k} (plain arrays have ASCII headers)`,
      );
    }
  }
  // TextDecoder, not String.fromCharCode(...bytes): spreading a large array overflows the stack.
  return new TextDecoder('ascii').decode(bytes);
}

/**
 * Parses the bytes of a .npy file. `file` names it in errors.
 * @throws CorruptFileError for a bad magic, version, header, dtype, shape or a data size that does not match.
 */
export function parseNpy(bytes: Uint8Array, file = 'buffer'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, k) => bytes[k] !== b)) {
    const start = Array.from(bytes.subarray(0, 6), (b) => String.fromCharCode(b)).join('');
    throw new CorruptFileError(
      `${file}: not a .npy file (expected the magic "\\x93NUMPY" at the start, got ${bytes.length < 6 ? `${bytes.length} bytes` : JSON.stringify(start)})`,
    );
  }
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new CorruptFileError(
      `${file}: unsupported .npy version ${major}.${minor} (expected 1.0, 2.0 or 3.0)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new CorruptFileError(`${file}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLen > MAX_NPY_HEADER_BYTES) {
    throw new CorruptFileError(
      `${file}: .npy header of ${headerLen} bytes is longer than the ${MAX_NPY_HEADER_BYTES} accepted (NumPy's own default limit)`,
    );
  }
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) {
    throw new CorruptFileError(
      `${file}: .npy header says ${headerLen} bytes but the file has only ${bytes.length - 8 - lenBytes} after the length field (truncated)`,
    );
  }
  const text = headerText(bytes.subarray(8 + lenBytes, dataStart), major, file).trim();
  const header = parseNpyHeader(text, file);
  const descr = header.get('descr');
  if (typeof descr !== 'string') {
    throw new CorruptFileError(
      `${file}: 'descr' must be a dtype string such as '<f4', got ${previewValue(descr)} (supported: ${Object.keys(DTYPES).join(', ')})`,
    );
  }
  let dtype = descr;
  let bigEndian = false;
  if (dtype.startsWith('>')) {
    bigEndian = true;
    dtype = `<${dtype.slice(1)}`;
  } else if (dtype.startsWith('=')) dtype = `<${dtype.slice(1)}`;
  if (dtype === '<u1' || dtype === '<b1' || dtype === '<i1') dtype = `|${dtype.slice(1)}`;
  const info = Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype as NpyDtype] : undefined;
  if (!info) {
    throw new CorruptFileError(
      `${file}: unsupported dtype ${JSON.stringify(truncateText(descr, 40))} (supported: ${Object.keys(DTYPES).join(', ')}, either byte order)`,
    );
  }
  const fortran = header.get('fortran_order');
  if (fortran !== true && fortran !== false) {
    throw new CorruptFileError(
      `${file}: 'fortran_order' must be True or False, got ${previewValue(fortran)}`,
    );
  }
  const shape = header.get('shape');
  if (!Array.isArray(shape) || shape.some((d) => d < 0)) {
    throw new CorruptFileError(
      `${file}: bad shape ${previewValue(shape)} in the .npy header (expected a tuple of non-negative integers)`,
    );
  }
  const dims = shape;
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = count * info.size;
  const available = bytes.length - dataStart;
  if (available !== expected) {
    const size = Number.isSafeInteger(expected) ? `${expected}` : 'more than 2^53';
    throw new CorruptFileError(
      `${file}: shape ${formatShape(dims)} of ${descr} needs ${size} data bytes, the file has ${available}${available < expected ? ' (truncated)' : ' (trailing bytes)'}`,
    );
  }
  // Copy into an aligned buffer (the data offset need not be a multiple of the element size).
  const buf = bytes.slice(dataStart, dataStart + expected);
  if (bigEndian !== !LITTLE_ENDIAN && info.size > 1) {
    for (let k = 0; k < buf.length; k += info.size) buf.subarray(k, k + info.size).reverse();
  }
  let data = info.read(buf.buffer, count);
  if (fortran && dims.length > 1) data = fortranToC(data, dims);
  return { dtype: dtype as NpyDtype, shape: dims, data };
}

/** Reorders column-major data into row-major order. */
function fortranToC<T extends NpyData>(data: T, shape: readonly number[]): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const n = shape.length;
  // Fortran strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
  const fstride = new Array<number>(n);
  fstride[0] = 1;
  for (let k = 1; k < n; k++) fstride[k] = (fstride[k - 1] as number) * (shape[k - 1] as number);
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < data.length; c++) {
    let f = 0;
    for (let k = 0; k < n; k++) f += (idx[k] as number) * (fstride[k] as number);
    (out as unknown as number[])[c] = (data as unknown as number[])[f] as number;
    for (let k = n - 1; k >= 0; k--) {
      idx[k] = (idx[k] as number) + 1;
      if ((idx[k] as number) < (shape[k] as number)) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** Which dtype a typed array is written as by default. */
function defaultDtype(data: ArrayBufferView): NpyDtype {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Uint32Array) return '<u4';
  throw new InvalidArgumentError(`encodeNpy: unsupported data ${Object.prototype.toString.call(data)}`);
}

export interface EncodeNpyOptions {
  /**
   * Stored dtype: by default the typed array's own ('<f4' for Float32Array...). '<f2' stores a
   * Float32Array as float16; '|b1' stores a Uint8Array of 0/1 as bool.
   */
  dtype?: NpyDtype;
  /** Force a format version (default 1.0, or 2.0 when the header does not fit in 65535 bytes). */
  version?: 1 | 2 | 3;
}

/** Encodes a C-order array as .npy bytes (little-endian). */
export function encodeNpy(
  array: { shape: readonly number[]; data: ArrayBufferView },
  options: EncodeNpyOptions = {},
): Uint8Array {
  const { shape, data } = array;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new InvalidArgumentError(
      `encodeNpy: shape must be non-negative integers, got ${previewValue(shape)}`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dtype = options.dtype ?? defaultDtype(data);
  const info = DTYPES[dtype];
  if (!info) throw new InvalidArgumentError(`encodeNpy: unsupported dtype ${previewValue(dtype)}`);
  let body: Uint8Array;
  if (dtype === '<f2') {
    if (!(data instanceof Float32Array))
      throw new InvalidArgumentError("encodeNpy: dtype '<f2' expects a Float32Array");
    body = new Uint8Array(floatToHalf(data).buffer);
  } else {
    if (dtype !== '|b1' && defaultDtype(data) !== dtype) {
      throw new InvalidArgumentError(`encodeNpy: dtype ${dtype} does not match ${data.constructor.name}`);
    }
    if (dtype === '|b1' && !(data instanceof Uint8Array))
      throw new InvalidArgumentError("encodeNpy: dtype '|b1' expects a Uint8Array of 0/1");
    body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    if (!LITTLE_ENDIAN && info.size > 1)
      for (let k = 0; k < body.length; k += info.size) body.subarray(k, k + info.size).reverse();
  }
  const elements = dtype === '<f2' ? (data as Float32Array).length : body.length / info.size;
  if (elements !== count) {
    throw new InvalidArgumentError(
      `encodeNpy: shape ${formatShape(shape)} has ${count} elements, data has ${elements}`,
    );
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = options.version ?? 1;
  const total = (v: number) => Math.ceil((8 + (v === 1 ? 2 : 4) + dict.length + 1) / 64) * 64;
  if (version === 1 && total(1) - 10 > 0xffff) version = 2;
  const lenBytes = version === 1 ? 2 : 4;
  const headerLen = total(version) - 8 - lenBytes;
  const out = new Uint8Array(8 + lenBytes + headerLen + body.length);
  out.set(MAGIC);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const header = `${dict}${' '.repeat(headerLen - dict.length - 1)}\n`;
  out.set(new TextEncoder().encode(header), 8 + lenBytes);
  out.set(body, 8 + lenBytes + headerLen);
  return out;
}

/** Any numeric npy data as float32 (int64 must be within +-2^53). */
export function npyToFloat32(array: NpyArray, what = 'array'): Float32Array {
  const { data } = array;
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  if (data instanceof BigInt64Array) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as bigint;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new InvalidArgumentError(
          `${what}: int64 value ${v} at index ${i} does not fit a float exactly`,
        );
      }
      out[i] = Number(v);
    }
    return out;
  }
  for (let i = 0; i < data.length; i++) out[i] = data[i] as number;
  return out;
}

/** Reads a .npy file. Errors name the path (missing file, corrupt content). */
export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await readFileNamed(path, '.npy array'), path);
}

/** Writes a .npy file atomically. */
export async function writeNpy(
  path: string,
  array: { shape: readonly number[]; data: ArrayBufferView },
  options: EncodeNpyOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeNpy(array, options));
}
