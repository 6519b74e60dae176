/**
 * The values a restricted unpickling of data.pkl can produce. Internally the unpickler keeps Python's
 * distinctions (dict, list, tuple, a global, a storage); what the reader hands out is plain: Maps, arrays,
 * primitives and TorchTensorRef records describing tensors whose bytes are read later.
 */
import type { SafetensorsDtype } from '../safetensors/dtypes.js';

/** A dict key: Python's str, int, bool or None. */
export type TorchKey = string | number | bigint | boolean | null;

/** A tensor as data.pkl describes it: a view (offset, shape, strides in elements) of a stored storage. */
export class TorchTensorRef {
  constructor(
    /** Element type of the storage (torch.FloatStorage -> F32, ...). */
    readonly dtype: SafetensorsDtype,
    readonly shape: readonly number[],
    /** Strides in elements, as torch reports `tensor.stride()`. */
    readonly stride: readonly number[],
    /** First element of the view within its storage (`tensor.storage_offset()`). */
    readonly storageOffset: number,
    /** The storage's key: its bytes are the archive entry `<archive>/data/<key>`. */
    readonly storageKey: string,
    /** Elements in the storage. */
    readonly storageNumel: number,
    readonly requiresGrad: boolean,
  ) {}
}

/**
 * A value of a PyTorch checkpoint: dicts (and OrderedDicts) are Maps in insertion order, lists and tuples
 * are arrays, Python ints are numbers (bigint beyond 2^53), floats numbers, str strings, None null.
 */
export type TorchValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly TorchValue[]
  | ReadonlyMap<TorchKey, TorchValue>
  | TorchTensorRef;

/** True for a tensor of a checkpoint's `root`. */
export function isTorchTensor(value: unknown): value is TorchTensorRef {
  return value instanceof TorchTensorRef;
}

// ------------------------------------------------------------------- the unpickler's own values

/** dict or collections.OrderedDict. `attributes` keeps a BUILD state (a state dict's `_metadata`). */
export class PyDict {
  readonly map = new Map<TorchKey, PyValue>();
  attributes: PyDict | undefined;
}

export class PyList {
  readonly items: PyValue[] = [];
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

/** What an allowed global is for; anything else was refused when the GLOBAL opcode was read. */
export type GlobalRole =
  | { kind: 'ordered-dict' }
  | { kind: 'rebuild-tensor' }
  | { kind: 'rebuild-parameter' }
  | { kind: 'storage-type'; dtype: SafetensorsDtype };

/** A reference to an allowed Python global (never a callable: REDUCE on it is interpreted, not run). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly qualname: string,
    readonly role: GlobalRole,
  ) {}

  get fullName(): string {
    return `${this.module}.${this.qualname}`;
  }
}

/** A storage from a persistent id: ('storage', torch.XStorage, key, location, numel). */
export class PyStorage {
  constructor(
    readonly key: string,
    readonly dtype: SafetensorsDtype,
    readonly numel: number,
  ) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyDict
  | PyList
  | PyTuple
  | PyGlobal
  | PyStorage
  | TorchTensorRef;

/** A short description of a value for error messages: its Python type. */
export function describePy(value: PyValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'a bool';
  if (typeof value === 'number') return Number.isInteger(value) ? `the int ${value}` : `the float ${value}`;
  if (typeof value === 'bigint') return `the int ${value}`;
  if (typeof value === 'string') return 'a str';
  if (value instanceof PyDict) return 'a dict';
  if (value instanceof PyList) return 'a list';
  if (value instanceof PyTuple) return `a tuple of ${value.items.length}`;
  if (value instanceof PyGlobal) return `the global ${value.fullName}`;
  if (value instanceof PyStorage) return 'a storage';
  return 'a tensor';
}
