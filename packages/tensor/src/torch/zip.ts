/**
 * The part of the zip format torch.save archives need: the central directory (zip64 included, which
 * PyTorch always writes), entry names and sizes, and where each entry's bytes start. Entries are read
 * by byte range from a ByteSource, so a multi-gigabyte checkpoint is never loaded whole. Only stored
 * (uncompressed) entries can be read: PyTorch never compresses, and reading a range of a deflated entry
 * would mean inflating all of it.
 */
import { CorruptFileError } from '../errors.js';
import { quoteName } from '../safetensors/format.js';
import { readExactly } from '../safetensors/read.js';
import type { ByteSource } from '../safetensors/source.js';
import { crc32 } from './crc32.js';
import type { TorchReadLimits } from './limits.js';

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

/** One entry of the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is refused when the entry is read. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

/** An opened archive: entries by name, and reads of their bytes. */
export interface ZipDirectory {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Entry names in directory order. */
  readonly names: readonly string[];
  /** Reads `length` bytes at `offset` within a stored entry. */
  readRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array>;
  /** Reads a whole stored entry and checks its CRC-32. */
  readWhole(entry: ZipEntry): Promise<Uint8Array>;
}

/** Little-endian field reads that fail with our error, never a RangeError. */
class Fields {
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
    readonly what: string,
  ) {}

  private need(at: number, n: number): void {
    if (at < 0 || at + n > this.bytes.length) {
      throw new CorruptFileError(
        `${this.file}: ${this.what} is cut short (needs ${n} bytes at ${at}, has ${this.bytes.length})`,
      );
    }
  }

  u16(at: number): number {
    this.need(at, 2);
    return (this.bytes[at] as number) | ((this.bytes[at + 1] as number) << 8);
  }

  u32(at: number): number {
    this.need(at, 4);
    return (
      ((this.bytes[at] as number) |
        ((this.bytes[at + 1] as number) << 8) |
        ((this.bytes[at + 2] as number) << 16) |
        ((this.bytes[at + 3] as number) << 24)) >>>
      0
    );
  }

  /** An unsigned 64-bit field as a number; above 2^53 is not a size any real file has. */
  u64(at: number, field: string): number {
    const low = this.u32(at);
    const high = this.u32(at + 4);
    const value = high * 2 ** 32 + low;
    if (!Number.isSafeInteger(value)) {
      throw new CorruptFileError(`${this.file}: ${this.what} ${field} is ${value}, beyond any file size`);
    }
    return value;
  }
}

/** A few entry names for an error message. */
export function describeEntryNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map(quoteName).join(', ');
  return names.length === 0 ? 'none' : `${shown}${names.length > 5 ? `, … (${names.length} in all)` : ''}`;
}

/**
 * Reads the central directory of the zip archive in `source`.
 *
 * @throws CorruptFileError naming `file` for a file that is not a complete zip archive, a multi-disk or
 *   encrypted one, an entry outside the file, duplicate names, or a directory over the limits.
 */
export async function readZipDirectory(
  source: ByteSource,
  file: string,
  limits: Pick<TorchReadLimits, 'maxZipEntries' | 'maxDirectoryBytes'>,
): Promise<ZipDirectory> {
  const size = source.size;
  if (size < EOCD_SIZE) {
    throw new CorruptFileError(
      `${file}: expected a zip archive (a PyTorch checkpoint), got a file of ${size} bytes, too short for one`,
    );
  }
  const tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT + 20);
  const tailStart = size - tailLength;
  const tail = await readExactly(source, tailStart, tailLength, file);
  const t = new Fields(tail, file, 'end of central directory');
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (
      tail[i] === 0x50 &&
      tail[i + 1] === 0x4b &&
      t.u32(i) === EOCD &&
      i + EOCD_SIZE + t.u16(i + 20) <= tail.length
    ) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new CorruptFileError(
      `${file}: no zip end-of-central-directory record in the last ${tailLength} bytes (a truncated or damaged archive, or not a zip file)`,
    );
  }
  if (t.u16(eocd + 4) !== 0 || t.u16(eocd + 6) !== 0) {
    throw new CorruptFileError(
      `${file}: a multi-disk zip archive; expected a single file as torch.save writes`,
    );
  }
  let count = t.u16(eocd + 10);
  let directorySize = t.u32(eocd + 12);
  let directoryOffset = t.u32(eocd + 16);
  // PyTorch always writes zip64 records; Python's zipfile prefers them when the locator is present.
  if (eocd >= 20 && t.u32(eocd - 20) === ZIP64_LOCATOR) {
    const recordOffset = t.u64(eocd - 20 + 8, 'zip64 record offset');
    if (recordOffset + 56 > tailStart + eocd - 20) {
      throw new CorruptFileError(
        `${file}: the zip64 end-of-central-directory record is said to be at ${recordOffset}, past where it can be`,
      );
    }
    const z = new Fields(
      await readExactly(source, recordOffset, 56, file),
      file,
      'zip64 end of central directory',
    );
    if (z.u32(0) !== ZIP64_EOCD) {
      throw new CorruptFileError(`${file}: no zip64 end-of-central-directory record at ${recordOffset}`);
    }
    count = z.u64(32, 'entry count');
    directorySize = z.u64(40, 'directory size');
    directoryOffset = z.u64(48, 'directory offset');
  }
  if (count > limits.maxZipEntries) {
    throw new CorruptFileError(
      `${file}: the archive lists ${count} entries, more than the limit of ${limits.maxZipEntries}`,
    );
  }
  if (directorySize > limits.maxDirectoryBytes) {
    throw new CorruptFileError(
      `${file}: the zip central directory is ${directorySize} bytes, more than the limit of ${limits.maxDirectoryBytes}`,
    );
  }
  if (directoryOffset + directorySize > size) {
    throw new CorruptFileError(
      `${file}: the zip central directory [${directoryOffset}, ${directoryOffset + directorySize}) lies past the end of the file (${size} bytes; truncated?)`,
    );
  }
  const dir = new Fields(
    await readExactly(source, directoryOffset, directorySize, file),
    file,
    'zip central directory',
  );
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const entries = new Map<string, ZipEntry>();
  const names: string[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (dir.u32(at) !== CENTRAL) {
      throw new CorruptFileError(`${file}: zip central directory entry ${i} has no signature at byte ${at}`);
    }
    const flags = dir.u16(at + 8);
    const method = dir.u16(at + 10);
    const crc = dir.u32(at + 16);
    let compressedSize = dir.u32(at + 20);
    let entrySize = dir.u32(at + 24);
    const nameLength = dir.u16(at + 28);
    const extraLength = dir.u16(at + 30);
    const commentLength = dir.u16(at + 32);
    let localHeaderOffset = dir.u32(at + 42);
    const nameStart = at + 46;
    const extraStart = nameStart + nameLength;
    const next = extraStart + extraLength + commentLength;
    if (next > dir.bytes.length) {
      throw new CorruptFileError(`${file}: zip central directory entry ${i} runs past the directory's end`);
    }
    let name: string;
    try {
      name = decoder.decode(dir.bytes.subarray(nameStart, extraStart));
    } catch {
      throw new CorruptFileError(`${file}: zip entry ${i} has a name that is not UTF-8`);
    }
    // zip64: the fields saturated at 0xFFFFFFFF are in the 0x0001 extra field, in this order.
    if (entrySize === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff) {
      let e = extraStart;
      let found = false;
      while (e + 4 <= extraStart + extraLength) {
        const id = dir.u16(e);
        const length = dir.u16(e + 2);
        if (e + 4 + length > extraStart + extraLength) break;
        if (id === 0x0001) {
          const z = new Fields(
            dir.bytes.subarray(e + 4, e + 4 + length),
            file,
            `zip64 field of ${quoteName(name)}`,
          );
          let p = 0;
          if (entrySize === 0xffffffff) {
            entrySize = z.u64(p, 'size');
            p += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = z.u64(p, 'compressed size');
            p += 8;
          }
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = z.u64(p, 'offset');
          found = true;
          break;
        }
        e += 4 + length;
      }
      if (!found) {
        throw new CorruptFileError(
          `${file}: zip entry ${quoteName(name)} needs a zip64 extra field and has none`,
        );
      }
    }
    if (flags & 1) {
      throw new CorruptFileError(
        `${file}: zip entry ${quoteName(name)} is encrypted; PyTorch checkpoints never are`,
      );
    }
    if (entries.has(name)) {
      throw new CorruptFileError(`${file}: the archive has two entries named ${quoteName(name)}`);
    }
    if (localHeaderOffset + 30 + compressedSize > size) {
      throw new CorruptFileError(
        `${file}: zip entry ${quoteName(name)} (${compressedSize} bytes at ${localHeaderOffset}) lies past the end of the file (${size} bytes; truncated?)`,
      );
    }
    entries.set(name, {
      name,
      method,
      flags,
      crc32: crc,
      compressedSize,
      size: entrySize,
      localHeaderOffset,
    });
    names.push(name);
    at = next;
  }
  return new ZipDirectoryImpl(source, file, entries, names);
}

class ZipDirectoryImpl implements ZipDirectory {
  private readonly dataStarts = new Map<string, number>();

  constructor(
    private readonly source: ByteSource,
    private readonly file: string,
    readonly entries: ReadonlyMap<string, ZipEntry>,
    readonly names: readonly string[],
  ) {}

  /** Absolute offset of an entry's bytes: after its local header, whose extra field PyTorch uses as padding. */
  private async dataStart(entry: ZipEntry): Promise<number> {
    const known = this.dataStarts.get(entry.name);
    if (known !== undefined) return known;
    const q = quoteName(entry.name);
    if (entry.method !== 0) {
      throw new CorruptFileError(
        `${this.file}: zip entry ${q} is compressed (method ${entry.method}); torch.save stores entries uncompressed — was the archive re-packed? Re-zip it without compression (zip -0) or save it again with torch.save`,
      );
    }
    if (entry.size !== entry.compressedSize) {
      throw new CorruptFileError(
        `${this.file}: zip entry ${q} is stored, yet its size (${entry.size}) differs from its stored size (${entry.compressedSize})`,
      );
    }
    const header = new Fields(
      await readExactly(this.source, entry.localHeaderOffset, 30, this.file),
      this.file,
      `local header of ${q}`,
    );
    if (header.u32(0) !== LOCAL) {
      throw new CorruptFileError(
        `${this.file}: zip entry ${q} has no local header at ${entry.localHeaderOffset} (damaged archive)`,
      );
    }
    const start = entry.localHeaderOffset + 30 + header.u16(26) + header.u16(28);
    if (start + entry.size > this.source.size) {
      throw new CorruptFileError(
        `${this.file}: zip entry ${q} (${entry.size} bytes from ${start}) runs past the end of the file (${this.source.size} bytes; truncated?)`,
      );
    }
    this.dataStarts.set(entry.name, start);
    return start;
  }

  async readRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    const start = await this.dataStart(entry);
    if (offset < 0 || length < 0 || offset + length > entry.size) {
      throw new CorruptFileError(
        `${this.file}: bytes [${offset}, ${offset + length}) are outside zip entry ${quoteName(entry.name)} (${entry.size} bytes)`,
      );
    }
    return readExactly(this.source, start + offset, length, this.file);
  }

  async readWhole(entry: ZipEntry): Promise<Uint8Array> {
    const bytes = await this.readRange(entry, 0, entry.size);
    const actual = crc32(bytes);
    if (actual !== entry.crc32) {
      throw new CorruptFileError(
        `${this.file}: zip entry ${quoteName(entry.name)} fails its CRC-32 check (stored ${entry.crc32.toString(16)}, computed ${actual.toString(16)}): the file is damaged`,
      );
    }
    return bytes;
  }
}
