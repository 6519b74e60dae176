/**
 * A small reader for NumPy .npy files (format versions 1.0, 2.0 and 3.0): little-endian float32,
 * float16 and float64 arrays (text embeddings, e.g. the umT5 states the PRFL reference's preprocessing
 * saves) and bool / uint8 / int32 / int64 arrays (attention masks), C order. Everything else is refused
 * with a message saying what the file holds. Values come back as a Float32Array.
 */
import { CorruptFileError, InvalidArgumentError, nodeImport } from '@prfl/tensor';

/** A decoded .npy array. */
export interface NpyArray {
  /** The header's dtype string, e.g. '<f4'. */
  descr: string;
  shape: number[];
  /** Values, converted to float32. */
  data: Float32Array;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const SUPPORTED: Record<string, { bytes: number; read: (v: DataView, o: number) => number }> = {
  '<f4': { bytes: 4, read: (v, o) => v.getFloat32(o, true) },
  '<f8': { bytes: 8, read: (v, o) => v.getFloat64(o, true) },
  '<f2': { bytes: 2, read: (v, o) => halfToFloat(v.getUint16(o, true)) },
  '|b1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '|u1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '<i4': { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  '<i8': { bytes: 8, read: (v, o) => Number(v.getBigInt64(o, true)) },
};

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function headerField(header: string, key: string, file: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (m === null) throw new CorruptFileError(`${file}: the .npy header has no '${key}': ${header.trim()}`);
  return header.slice(m.index + m[0].length);
}

/**
 * Parses the bytes of a .npy file.
 *
 * @throws CorruptFileError for a missing magic string, an unknown format version, a malformed header, or
 *   fewer data bytes than the shape needs; InvalidArgumentError for Fortran order or an unsupported dtype
 *   (big-endian, complex, strings, objects, ...), naming it.
 */
export function parseNpy(bytes: Uint8Array, file = '.npy'): NpyArray {
  if (!(bytes instanceof Uint8Array))
    throw new InvalidArgumentError(`${file}: expected the file's bytes (Uint8Array)`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new CorruptFileError(`${file}: not a .npy file (it does not start with \\x93NUMPY)`);
  }
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new CorruptFileError(`${file}: truncated .npy header`);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new CorruptFileError(
      `${file}: unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`,
    );
  }
  if (start + headerLen > bytes.length) {
    throw new CorruptFileError(
      `${file}: the .npy header claims ${headerLen} bytes but the file has ${bytes.length - start} after the prefix`,
    );
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(start, start + headerLen),
  );
  const descrMatch = /^['"]([^'"]*)['"]/.exec(headerField(header, 'descr', file));
  if (descrMatch === null)
    throw new CorruptFileError(`${file}: cannot read 'descr' in the .npy header: ${header.trim()}`);
  const descr = descrMatch[1] as string;
  const fortran = /^(True|False)/.exec(headerField(header, 'fortran_order', file));
  if (fortran === null)
    throw new CorruptFileError(`${file}: cannot read 'fortran_order' in the .npy header: ${header.trim()}`);
  if (fortran[1] === 'True') {
    throw new InvalidArgumentError(
      `${file}: Fortran-order arrays are not supported; save with np.ascontiguousarray`,
    );
  }
  const shapeMatch = /^\(([^)]*)\)/.exec(headerField(header, 'shape', file));
  if (shapeMatch === null)
    throw new CorruptFileError(`${file}: cannot read 'shape' in the .npy header: ${header.trim()}`);
  const shape = (shapeMatch[1] as string)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(n) || n < 0)
        throw new CorruptFileError(`${file}: bad dimension '${s}' in the .npy shape`);
      return n;
    });
  const kind = SUPPORTED[descr === '<b1' ? '|b1' : descr === '<u1' ? '|u1' : descr];
  if (kind === undefined) {
    throw new InvalidArgumentError(
      `${file}: unsupported .npy dtype '${descr}'; expected little-endian float32 ('<f4'), float16 ('<f2') or float64 ('<f8'), or a bool/uint8/int32/int64 mask`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const need = count * kind.bytes;
  if (bytes.length - dataStart < need) {
    throw new CorruptFileError(
      `${file}: truncated .npy data: shape [${shape.join(', ')}] of '${descr}' needs ${need} bytes, the file has ${bytes.length - dataStart}`,
    );
  }
  const data = new Float32Array(count);
  if (descr === '<f4' && LITTLE_ENDIAN_HOST && (bytes.byteOffset + dataStart) % 4 === 0) {
    data.set(new Float32Array(bytes.buffer, bytes.byteOffset + dataStart, count));
  } else {
    for (let i = 0; i < count; i++) data[i] = kind.read(view, dataStart + i * kind.bytes);
  }
  return { descr, shape, data };
}

/** Node: reads and parses a .npy file. */
export async function readNpyFile(path: string): Promise<NpyArray> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(path));
  } catch (e) {
    throw new InvalidArgumentError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseNpy(bytes, path);
}
