/**
 * Test helpers for PyTorch checkpoints: a minimal stored-zip reader and writer (independent of the code
 * under test) to take torch.save archives apart and put modified ones together, and a pickle builder for
 * hand-made data.pkl files.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipFile {
  name: string;
  data: Uint8Array;
}

/** The entries of a zip archive of stored files (as torch.save writes), read via the central directory. */
export function unzipStored(bytes: Uint8Array): ZipFile[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = bytes.length - 22;
  while (eocd >= 0 && v.getUint32(eocd, true) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('not a zip');
  const count = v.getUint16(eocd + 10, true);
  let at = v.getUint32(eocd + 16, true);
  const out: ZipFile[] = [];
  for (let i = 0; i < count; i++) {
    const size = v.getUint32(at + 20, true);
    const nameLength = v.getUint16(at + 28, true);
    const extra = v.getUint16(at + 30, true);
    const comment = v.getUint16(at + 32, true);
    const local = v.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    out.push({ name, data: bytes.slice(start, start + size) });
    at += 46 + nameLength + extra + comment;
  }
  return out;
}

export interface ZipOptions {
  /** Pad local headers so data starts at a multiple of this (PyTorch uses 64). Default 64. */
  align?: number;
  /** Also write zip64 end records, as PyTorch does. Default true. */
  zip64?: boolean;
  /** Compression method to claim (the data is not actually compressed). Default 0. */
  method?: number;
  /** Per-entry CRC override. */
  crcOf?: (file: ZipFile) => number;
}

/** A zip archive of stored files laid out like PyTorch's writer (aligned data, zip64 end records). */
export function zipStored(files: readonly ZipFile[], options: ZipOptions = {}): Uint8Array {
  const align = options.align ?? 64;
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.name);
    const c = options.crcOf ? options.crcOf(f) : crc(f.data);
    let pad = (align - ((offset + 30 + name.length + 4) % align)) % align;
    if (align <= 1) pad = -4;
    const extraLength = pad + 4;
    const local = new Uint8Array(30 + name.length + extraLength);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, options.method ?? 0, true);
    lv.setUint32(14, c, true);
    lv.setUint32(18, f.data.length, true);
    lv.setUint32(22, f.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, extraLength, true);
    local.set(name, 30);
    if (extraLength > 0) {
      lv.setUint16(30 + name.length, 0x4246, true); // "FB", PyTorch's padding field
      lv.setUint16(32 + name.length, pad, true);
      local.fill(0x5a, 34 + name.length);
    }
    const header = new Uint8Array(46 + name.length);
    const hv = new DataView(header.buffer);
    hv.setUint32(0, 0x02014b50, true);
    hv.setUint16(4, 20, true);
    hv.setUint16(6, 20, true);
    hv.setUint16(10, options.method ?? 0, true);
    hv.setUint32(16, c, true);
    hv.setUint32(20, f.data.length, true);
    hv.setUint32(24, f.data.length, true);
    hv.setUint16(28, name.length, true);
    hv.setUint32(42, offset, true);
    header.set(name, 46);
    central.push(header);
    chunks.push(local, f.data);
    offset += local.length + f.data.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  chunks.push(...central);
  offset += cdSize;
  if (options.zip64 ?? true) {
    const z = new Uint8Array(56 + 20);
    const zv = new DataView(z.buffer);
    zv.setUint32(0, 0x06064b50, true);
    zv.setBigUint64(4, 44n, true);
    zv.setUint16(12, 45, true);
    zv.setUint16(14, 45, true);
    zv.setBigUint64(24, BigInt(files.length), true);
    zv.setBigUint64(32, BigInt(files.length), true);
    zv.setBigUint64(40, BigInt(cdSize), true);
    zv.setBigUint64(48, BigInt(cdOffset), true);
    zv.setUint32(56, 0x07064b50, true);
    zv.setBigUint64(64, BigInt(offset), true);
    zv.setUint32(72, 1, true);
    chunks.push(z);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdOffset, true);
  chunks.push(end);
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** Builds pickles opcode by opcode. */
export class PickleBuilder {
  private readonly parts: number[] = [0x80, 2];

  raw(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }

  op(char: string): this {
    return this.raw(char.charCodeAt(0));
  }

  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.raw(0x58, b.length & 0xff, (b.length >>> 8) & 0xff, (b.length >>> 16) & 0xff, b.length >>> 24);
    return this.raw(...b);
  }

  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    return this.raw(0x4a, ...b);
  }

  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** ('storage', torch.<type>, key, 'cpu', numel) BINPERSID */
  storage(type: string, key: string, numel: number): this {
    return this.op('(').str('storage').global('torch', type).str(key).str('cpu').int(numel).op('t').op('Q');
  }

  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(type: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op('(');
    this.storage(type, key, numel).int(offset);
    this.op('(');
    for (const s of size) this.int(s);
    this.op('t').op('(');
    for (const s of stride) this.int(s);
    this.op('t').raw(0x89).global('collections', 'OrderedDict').op(')').op('R').op('t').op('R');
    return this;
  }

  stop(): Uint8Array {
    return new Uint8Array([...this.parts, 0x2e]);
  }
}

/** A torch-style archive holding `pickle` as data.pkl and the given storages. */
export function torchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  archive = 'archive',
  options: ZipOptions = {},
): Uint8Array {
  return zipStored(
    [
      { name: `${archive}/data.pkl`, data: pickle },
      ...Object.entries(storages).map(([k, data]) => ({ name: `${archive}/data/${k}`, data })),
      { name: `${archive}/version`, data: new TextEncoder().encode('3\n') },
    ],
    options,
  );
}

const STORAGE_OF: Readonly<Record<string, string>> = {
  F64: 'DoubleStorage',
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  I16: 'ShortStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};
const SIZE_OF: Readonly<Record<string, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/**
 * A state dict as torch.save writes it (an OrderedDict of contiguous tensors, one storage each), for
 * tests of loaders in other packages: `tensors` are (name, dtype, shape, little-endian bytes).
 */
export function torchStateDictZip(
  tensors: ReadonlyArray<{ name: string; dtype: string; shape: readonly number[]; data: Uint8Array }>,
  archive = 'archive',
): Uint8Array {
  const p = new PickleBuilder().global('collections', 'OrderedDict').op(')').op('R').op('(');
  const storages: Record<string, Uint8Array> = {};
  tensors.forEach((t, i) => {
    const type = STORAGE_OF[t.dtype];
    const size = SIZE_OF[t.dtype];
    if (type === undefined || size === undefined)
      throw new Error(`torchStateDictZip: no storage for ${t.dtype}`);
    const stride = t.shape.map((_, k) => t.shape.slice(k + 1).reduce((a, b) => a * b, 1));
    p.str(t.name).tensor(type, String(i), t.data.length / size, 0, [...t.shape], stride);
    storages[String(i)] = t.data;
  });
  return torchZip(p.op('u').stop(), storages, archive);
}
