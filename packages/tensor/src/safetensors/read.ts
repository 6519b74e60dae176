/**
 * Reading safetensors files: open reads only the header; tensors are read on demand, one byte range each.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { CorruptFileError, InvalidArgumentError } from '../errors.js';
import {
  MAX_HEADER_BYTES,
  parseHeader,
  quoteName,
  readHeaderLength,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './format.js';
import { type RawTensor, rawToTensor } from './raw.js';
import { type ByteSource, type SafetensorsInput, toByteSource } from './source.js';

/** What a single file and a sharded checkpoint have in common: list, inspect and load tensors by name. */
export interface TensorReader {
  /** Every tensor, in storage order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** Every tensor name, in storage order. */
  readonly names: readonly string[];
  /** The `__metadata__` map (for a sharded checkpoint: the first shard's), or undefined when absent. */
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** True when a tensor of that name exists. */
  has(name: string): boolean;
  /** dtype, shape, byte length and offsets of a tensor. Throws InvalidArgumentError for an unknown name. */
  info(name: string): SafetensorsTensorInfo;
  /** Reads one tensor's stored bytes (no conversion). */
  readRaw(name: string): Promise<RawTensor>;
  /** Reads one tensor as a tf.Tensor (upcast to float32/int32/bool, see rawToTensor). The caller disposes it. */
  readTensor(name: string): Promise<tf.Tensor>;
  /** Releases the file handles. */
  close(): Promise<void>;
}

/** An open safetensors file. */
export interface SafetensorsFile extends TensorReader {
  /** The file's name in error messages. */
  readonly name: string;
  /** The validated header. */
  readonly header: SafetensorsHeader;
  /** Where the bytes come from. */
  readonly source: ByteSource;
}

/** Options of openSafetensors / loadSafetensors. */
export interface OpenSafetensorsOptions {
  /** Refuse headers longer than this many bytes (default 100 MB, as the official implementation). */
  maxHeaderBytes?: number;
  /** Name used in error messages (default: the path, URL, Blob name or `buffer`). */
  name?: string;
}

/** Reads exactly `length` bytes or throws CorruptFileError naming the file. */
export async function readExactly(
  source: ByteSource,
  offset: number,
  length: number,
  file: string,
): Promise<Uint8Array> {
  const bytes = await source.read(offset, length);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== length) {
    throw new CorruptFileError(
      `${file}: expected ${length} bytes at offset ${offset}, got ${bytes instanceof Uint8Array ? bytes.byteLength : 'no bytes'}`,
    );
  }
  return bytes;
}

/** An InvalidArgumentError for an unknown tensor name that lists the closest available names. */
export function unknownTensorError(
  file: string,
  name: string,
  available: readonly string[],
): InvalidArgumentError {
  const prefixLength = (s: string): number => {
    let i = 0;
    while (i < s.length && i < name.length && s[i] === name[i]) i++;
    return i;
  };
  const shown = available
    .map((s, i) => ({ s, i, p: prefixLength(s) }))
    .sort((a, b) => b.p - a.p || a.i - b.i)
    .slice(0, 5)
    .map((e) => quoteName(e.s));
  const list =
    available.length === 0
      ? 'the file holds no tensors'
      : `${available.length} available, e.g. ${shown.join(', ')}${available.length > shown.length ? ', …' : ''}`;
  return new InvalidArgumentError(`${file}: no tensor named ${quoteName(name)} (${list})`);
}

/**
 * Opens a safetensors file and reads only its header: `source` is a Node path, a Uint8Array or
 * ArrayBuffer, a Blob/File, a fetch Response or any ByteSource. Tensors are then read on demand
 * (`readTensor`, `readRaw`), each with one read of its byte range. `close()` releases the source
 * (it also closes a ByteSource passed in).
 *
 * @throws CorruptFileError when the header is malformed, inconsistent or does not match the file size.
 */
export async function openSafetensors(
  source: SafetensorsInput,
  options: OpenSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  const bytes = await toByteSource(source);
  const name = options.name ?? bytes.name ?? 'safetensors';
  try {
    const maxHeaderBytes = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
    const prefix = bytes.size >= 8 ? await readExactly(bytes, 0, 8, name) : new Uint8Array(0);
    const headerLength = readHeaderLength(prefix, bytes.size, name, maxHeaderBytes);
    const header = parseHeader(await readExactly(bytes, 8, headerLength, name), bytes.size, name);
    return new SafetensorsFileImpl(name, header, bytes);
  } catch (e) {
    await bytes.close?.();
    throw e;
  }
}

class SafetensorsFileImpl implements SafetensorsFile {
  readonly names: readonly string[];
  private readonly byName = new Map<string, SafetensorsTensorInfo>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly header: SafetensorsHeader,
    readonly source: ByteSource,
  ) {
    for (const t of header.tensors) this.byName.set(t.name, t);
    this.names = header.tensors.map((t) => t.name);
  }

  get tensors(): readonly SafetensorsTensorInfo[] {
    return this.header.tensors;
  }

  get metadata(): Readonly<Record<string, string>> | undefined {
    return this.header.metadata;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.byName.get(name);
    if (info === undefined) throw unknownTensorError(this.name, name, this.names);
    return info;
  }

  async readRaw(name: string): Promise<RawTensor> {
    const info = this.info(name);
    if (this.closed)
      throw new InvalidArgumentError(`${this.name}: readRaw(${quoteName(name)}) after close()`);
    const data = await readExactly(
      this.source,
      this.header.dataStart + info.dataOffsets[0],
      info.byteLength,
      this.name,
    );
    return { dtype: info.dtype, shape: [...info.shape], data };
  }

  async readTensor(name: string): Promise<tf.Tensor> {
    return rawToTensor(await this.readRaw(name), name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.close?.();
  }
}

/** Options of loadSafetensors. */
export interface LoadSafetensorsOptions extends OpenSafetensorsOptions {
  /** Load only these tensors (default: all). Unknown names are an error before anything is loaded. */
  names?: readonly string[];
}

/**
 * Loads tensors from a TensorReader (a file or a sharded checkpoint) by name into a record (default: all);
 * unknown names are an error before anything is loaded, and on a later failure the tensors loaded so far
 * are disposed before the error propagates.
 */
export async function loadTensors(
  reader: TensorReader,
  names: readonly string[] = reader.names,
): Promise<Record<string, tf.Tensor>> {
  const unique = [...new Set(names)];
  for (const n of unique) reader.info(n);
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const n of unique) {
      Object.defineProperty(out, n, {
        value: await reader.readTensor(n),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  } catch (e) {
    for (const t of Object.values(out)) t.dispose();
    throw e;
  }
  return out;
}

/**
 * Loads a safetensors file (or only `names` of it) into tf.Tensors keyed by name, then closes it.
 * See openSafetensors for the accepted sources and rawToTensor for the dtype conversions.
 */
export async function loadSafetensors(
  source: SafetensorsInput,
  options: LoadSafetensorsOptions = {},
): Promise<Record<string, tf.Tensor>> {
  const file = await openSafetensors(source, options);
  try {
    return await loadTensors(file, options.names);
  } finally {
    await file.close();
  }
}
