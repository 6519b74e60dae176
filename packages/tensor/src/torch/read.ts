/**
 * Reading PyTorch checkpoints (torch.save since 1.6: a zip archive holding `<archive>/data.pkl`, the raw
 * storages `<archive>/data/<key>`, and `version` / `byteorder` records). Opening reads the zip directory
 * and data.pkl; tensor bytes are read on demand, one byte range each, as for safetensors files. The
 * result is a TensorReader, so code written for safetensors reads these files unchanged.
 *
 * Safety: data.pkl is interpreted by a restricted unpickler that runs no code (see pickle.ts and
 * torch-hooks.ts); a pickle naming any other Python global is refused with UnsafePickleError.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { CorruptFileError, InvalidArgumentError } from '../errors.js';
import { dtypeByteSize } from '../safetensors/dtypes.js';
import type { SafetensorsTensorInfo } from '../safetensors/format.js';
import { quoteName } from '../safetensors/format.js';
import { type RawTensor, rawToTensor } from '../safetensors/raw.js';
import { loadTensors, type TensorReader, unknownTensorError } from '../safetensors/read.js';
import { type ByteSource, type SafetensorsInput, toByteSource } from '../safetensors/source.js';
import { resolveTorchLimits, type TorchReadLimits } from './limits.js';
import { unpickle } from './pickle.js';
import { gatherStrided, isContiguous, viewSpan } from './strided.js';
import { torchPickleHooks } from './torch-hooks.js';
import {
  PyDict,
  PyGlobal,
  PyList,
  PyStorage,
  type PyTuple,
  type PyValue,
  type TorchKey,
  TorchTensorRef,
  type TorchValue,
} from './values.js';
import { describeEntryNames, readZipDirectory, type ZipDirectory, type ZipEntry } from './zip.js';

/**
 * One tensor of a checkpoint, under its flattened name. `dtype`, `shape` and `byteLength` mean what they
 * mean for safetensors (byteLength = product(shape) * element size, the bytes readRaw returns);
 * `dataOffsets` is the byte range of the tensor's storage record that the view reaches, which is longer
 * than byteLength for a non-contiguous view.
 */
export interface TorchTensorInfo extends SafetensorsTensorInfo {
  /** The storage record's key (`<archive>/data/<key>`); tensors with the same key share memory in PyTorch. */
  storageKey: string;
  /** Offset of the first element in the storage, in elements. */
  storageOffset: number;
  /** Strides in elements. */
  stride: number[];
  /** False for views such as a transpose: readRaw copies them into C order. */
  contiguous: boolean;
  requiresGrad: boolean;
}

/** An open PyTorch checkpoint. */
export interface TorchCheckpoint extends TensorReader {
  /** The file's name in error messages. */
  readonly name: string;
  /** The archive's folder name inside the zip (`archive`, or the saved file's stem). */
  readonly archive: string;
  /**
   * The unpickled object: dicts as Maps, lists and tuples as arrays, tensors as TorchTensorRef. What
   * `torch.load` would return, without running anything.
   */
  readonly root: TorchValue;
  readonly tensors: readonly TorchTensorInfo[];
  info(name: string): TorchTensorInfo;
  /** Always undefined: torch.save has no string metadata (non-tensor values are in `root`). */
  readonly metadata: undefined;
  readonly source: ByteSource;
}

export interface OpenTorchOptions {
  /** Name used in error messages (default: the path, URL, Blob name or `buffer`). */
  name?: string;
  /** Bounds on sizes and counts (see TorchReadLimits for the defaults). */
  limits?: Partial<TorchReadLimits>;
}

export interface LoadTorchOptions extends OpenTorchOptions {
  /** Load only these tensors (default: all). Unknown names are an error before anything is loaded. */
  names?: readonly string[];
}

/** The archive's folder, as torch finds it: the first entry's name up to its first slash. */
function archiveName(zip: ZipDirectory, file: string): string {
  const first = zip.names[0];
  const slash = first?.indexOf('/') ?? -1;
  if (first === undefined || slash <= 0) {
    throw new CorruptFileError(
      `${file}: expected a PyTorch checkpoint (a zip archive with <archive>/data.pkl), got a zip archive whose entries are ${describeEntryNames(zip.names)}`,
    );
  }
  return first.slice(0, slash);
}

async function checkByteorder(zip: ZipDirectory, archive: string, file: string): Promise<void> {
  const entry = zip.entries.get(`${archive}/byteorder`);
  // PyTorch before 2.0 writes no byteorder record; those files are little-endian (x86, ARM).
  if (entry === undefined) return;
  if (entry.size > 16) {
    throw new CorruptFileError(
      `${file}: the byteorder record has ${entry.size} bytes, expected 'little' or 'big'`,
    );
  }
  const text = new TextDecoder().decode(await zip.readWhole(entry)).trim();
  if (text === 'little') return;
  if (text === 'big') {
    throw new CorruptFileError(
      `${file}: the checkpoint was written on a big-endian machine (byteorder 'big'); this reader supports little-endian checkpoints only: load and re-save it with torch.save on a little-endian machine (x86, ARM)`,
    );
  }
  throw new CorruptFileError(
    `${file}: the byteorder record says ${JSON.stringify(text.slice(0, 20))}, expected 'little' or 'big'`,
  );
}

/** Turns the unpickler's values into TorchValues; refuses leftovers (a bare global or storage). */
function toPublic(root: PyValue, file: string, limits: TorchReadLimits): TorchValue {
  const done = new Map<object, TorchValue>();
  const active = new Set<object>();
  let visits = 0;
  const convert = (v: PyValue, depth: number): TorchValue => {
    if (v === null || typeof v !== 'object' || v instanceof TorchTensorRef) return v;
    if (v instanceof PyGlobal || v instanceof PyStorage) {
      throw new CorruptFileError(
        `${file}: data.pkl holds ${v instanceof PyGlobal ? `the global ${v.fullName}` : 'a bare storage'} as a value; a state dict holds tensors`,
      );
    }
    const known = done.get(v);
    if (known !== undefined) return known;
    if (active.has(v)) throw new CorruptFileError(`${file}: data.pkl holds a container that contains itself`);
    if (depth > limits.maxNesting) {
      throw new CorruptFileError(
        `${file}: data.pkl nests containers deeper than the limit of ${limits.maxNesting}`,
      );
    }
    active.add(v);
    let out: TorchValue;
    if (v instanceof PyDict) {
      const map = new Map<TorchKey, TorchValue>();
      for (const [k, item] of v.map) {
        if (++visits > limits.maxEntries)
          throw new CorruptFileError(`${file}: data.pkl holds more than ${limits.maxEntries} values`);
        map.set(k, convert(item, depth + 1));
      }
      out = map;
    } else {
      const items = v instanceof PyList ? v.items : (v as PyTuple).items;
      const arr: TorchValue[] = [];
      for (const item of items) {
        if (++visits > limits.maxEntries)
          throw new CorruptFileError(`${file}: data.pkl holds more than ${limits.maxEntries} values`);
        arr.push(convert(item, depth + 1));
      }
      out = arr;
    }
    active.delete(v);
    done.set(v, out);
    return out;
  };
  return convert(root, 0);
}

/**
 * Every tensor of `root` under a dotted name: dict keys and list indices joined with '.', as PyTorch names
 * nested modules ({"state_dict": {"fc.weight": t}} -> "state_dict.fc.weight"; a bare tensor -> "").
 * Non-tensor values are skipped (they stay in `root`).
 */
export function flattenTorchTensors(
  root: TorchValue,
  file = 'checkpoint',
  limits: Partial<Pick<TorchReadLimits, 'maxEntries' | 'maxTensors'>> = {},
): Array<[string, TorchTensorRef]> {
  const maxEntries = limits.maxEntries ?? Number.MAX_SAFE_INTEGER;
  const maxTensors = limits.maxTensors ?? Number.MAX_SAFE_INTEGER;
  const out: Array<[string, TorchTensorRef]> = [];
  const seen = new Set<string>();
  let visits = 0;
  // Containers may be shared (the memo lets a pickle reference one twice), so the paths can outnumber
  // the containers exponentially; shared subtrees without tensors are walked once, and `maxEntries`
  // bounds the rest.
  const holdsTensor = new Map<object, boolean>();
  const anyTensor = (v: TorchValue, depth: number): boolean => {
    if (v instanceof TorchTensorRef) return true;
    if (!(v instanceof Map) && !Array.isArray(v)) return false;
    const known = holdsTensor.get(v);
    if (known !== undefined) return known;
    if (depth > 1000) throw new CorruptFileError(`${file}: values nested more than 1000 deep`);
    holdsTensor.set(v, false); // a cycle back here adds nothing
    let found = false;
    for (const item of v instanceof Map ? v.values() : v) {
      if (anyTensor(item, depth + 1)) {
        found = true;
        break;
      }
    }
    holdsTensor.set(v, found);
    return found;
  };
  const walk = (v: TorchValue, path: string, depth: number): void => {
    if (!anyTensor(v, depth)) return;
    if (++visits > maxEntries) {
      throw new CorruptFileError(`${file}: listing the tensors visits more than ${maxEntries} values`);
    }
    if (depth > 1000) throw new CorruptFileError(`${file}: values nested more than 1000 deep`);
    const join = (k: string) => (path === '' ? k : `${path}.${k}`);
    if (v instanceof TorchTensorRef) {
      if (seen.has(path)) {
        throw new CorruptFileError(
          `${file}: two tensors are both named ${quoteName(path)} once nested keys are joined with '.'`,
        );
      }
      if (out.length >= maxTensors) {
        throw new CorruptFileError(`${file}: data.pkl lists more than the limit of ${maxTensors} tensors`);
      }
      seen.add(path);
      out.push([path, v]);
    } else if (v instanceof Map) {
      for (const [k, item] of v) walk(item, join(String(k)), depth + 1);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i] as TorchValue, join(String(i)), depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/**
 * Opens a PyTorch checkpoint written by torch.save (PyTorch >= 1.6): a Node path, a Uint8Array or
 * ArrayBuffer, a Blob/File, a fetch Response or any ByteSource. Reads the zip directory and data.pkl
 * (checking sizes, strides and offsets against the stored bytes); tensor data is read on demand.
 * Tensors are listed under dotted names (see flattenTorchTensors). `close()` releases the source.
 *
 * @throws UnsafePickleError when data.pkl names a Python global outside the allow list (nothing is run);
 *   CorruptFileError for a damaged archive or pickle, a big-endian file, or a limit exceeded.
 */
export async function openTorchCheckpoint(
  source: SafetensorsInput,
  options: OpenTorchOptions = {},
): Promise<TorchCheckpoint> {
  const limits = resolveTorchLimits(options.limits);
  const bytes = await toByteSource(source);
  const name = options.name ?? bytes.name ?? 'checkpoint';
  try {
    const zip = await readZipDirectory(bytes, name, limits);
    const archive = archiveName(zip, name);
    const pickleEntry = zip.entries.get(`${archive}/data.pkl`);
    if (pickleEntry === undefined) {
      const hint = zip.entries.has(`${archive}/constants.pkl`)
        ? ' (this is a TorchScript archive from torch.jit.save; save the state dict with torch.save instead)'
        : '';
      throw new CorruptFileError(
        `${name}: expected ${archive}/data.pkl in the zip archive, found ${describeEntryNames(zip.names)}${hint}`,
      );
    }
    if (pickleEntry.size > limits.maxPickleBytes) {
      throw new CorruptFileError(
        `${name}: data.pkl is ${pickleEntry.size} bytes, more than the limit of ${limits.maxPickleBytes}`,
      );
    }
    await checkByteorder(zip, archive, name);
    const pickled = await zip.readWhole(pickleEntry);
    const storageEntry = (key: string): ZipEntry | undefined => zip.entries.get(`${archive}/data/${key}`);
    const hooks = torchPickleHooks(name, (key) => storageEntry(key)?.size, limits);
    const root = toPublic(unpickle(pickled, name, hooks, limits), name, limits);
    const infos: TorchTensorInfo[] = [];
    for (const [tensorName, ref] of flattenTorchTensors(root, name, limits)) {
      const size = dtypeByteSize(ref.dtype);
      const span = viewSpan(ref.shape, ref.stride);
      const begin = ref.storageOffset * size;
      let count = 1;
      for (const d of ref.shape) count *= d;
      infos.push({
        name: tensorName,
        dtype: ref.dtype,
        shape: [...ref.shape],
        dataOffsets: [begin, begin + span * size],
        byteLength: count * size,
        storageKey: ref.storageKey,
        storageOffset: ref.storageOffset,
        stride: [...ref.stride],
        contiguous: isContiguous(ref.shape, ref.stride),
        requiresGrad: ref.requiresGrad,
      });
      // Fail at open, not at the first read, when a storage's bytes are not where the directory says.
      await zip.readRange(storageEntry(ref.storageKey) as ZipEntry, 0, 0);
    }
    return new TorchCheckpointImpl(name, archive, root, infos, bytes, zip, storageEntry);
  } catch (e) {
    await bytes.close?.();
    throw e;
  }
}

class TorchCheckpointImpl implements TorchCheckpoint {
  readonly names: readonly string[];
  readonly metadata = undefined;
  private readonly byName = new Map<string, TorchTensorInfo>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly archive: string,
    readonly root: TorchValue,
    readonly tensors: readonly TorchTensorInfo[],
    readonly source: ByteSource,
    private readonly zip: ZipDirectory,
    private readonly storageEntry: (key: string) => ZipEntry | undefined,
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
    this.names = tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TorchTensorInfo {
    const info = this.byName.get(name);
    if (info === undefined) throw unknownTensorError(this.name, name, this.names);
    return info;
  }

  async readRaw(name: string): Promise<RawTensor> {
    const info = this.info(name);
    if (this.closed)
      throw new InvalidArgumentError(`${this.name}: readRaw(${quoteName(name)}) after close()`);
    const entry = this.storageEntry(info.storageKey) as ZipEntry;
    const [begin, end] = info.dataOffsets;
    const span = await this.zip.readRange(entry, begin, end - begin);
    const data = info.contiguous
      ? span.subarray(0, info.byteLength)
      : gatherStrided(span, info.shape, info.stride, dtypeByteSize(info.dtype));
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

/** True for a reader returned by openTorchCheckpoint (or by openWeights for a PyTorch file). */
export function isTorchCheckpoint(reader: unknown): reader is TorchCheckpoint {
  return reader instanceof TorchCheckpointImpl;
}

/**
 * Loads a PyTorch checkpoint's tensors (or only `names`) into tf.Tensors keyed by flattened name, then
 * closes it: float16/bfloat16/float64 become float32, integers int32 (range-checked), bool bool, as
 * loadSafetensors does.
 */
export async function loadTorchCheckpoint(
  source: SafetensorsInput,
  options: LoadTorchOptions = {},
): Promise<Record<string, tf.Tensor>> {
  const file = await openTorchCheckpoint(source, options);
  try {
    return await loadTensors(file, options.names);
  } finally {
    await file.close();
  }
}
