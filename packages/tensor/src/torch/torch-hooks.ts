/**
 * The meaning of a torch.save pickle: the allow list of globals and what REDUCE, BUILD and persistent ids
 * do with them. Allowed: `collections.OrderedDict` (an empty dict), `torch._utils._rebuild_tensor_v2` and
 * `torch._utils._rebuild_parameter` (a tensor description), and `torch.<X>Storage` classes as storage
 * types in persistent ids. Every other global is refused when it is named, before anything could use it.
 */
import { CorruptFileError, formatShape } from '../errors.js';
import { dtypeByteSize, type SafetensorsDtype } from '../safetensors/dtypes.js';
import { quoteName } from '../safetensors/format.js';
import { UnsafePickleError } from './errors.js';
import type { TorchReadLimits } from './limits.js';
import type { PickleHooks } from './pickle.js';
import { storageDtype, TORCH_STORAGE_TYPES } from './storage-types.js';
import { describePy, PyDict, PyGlobal, PyStorage, PyTuple, type PyValue, TorchTensorRef } from './values.js';

/** torch's own limit on dimensions. */
export const MAX_TORCH_DIMS = 64;

const ALLOWED =
  'collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.<type>Storage';

/**
 * Hooks for unpickle(): `storageBytes(key)` gives the byte size of the archive's `data/<key>` entry, or
 * undefined when there is none.
 */
export function torchPickleHooks(
  file: string,
  storageBytes: (key: string) => number | undefined,
  limits: Pick<TorchReadLimits, 'maxExpandedBytes'>,
): PickleHooks {
  const where = `${file}: data.pkl`;
  const storages = new Map<string, PyStorage>();

  const int = (value: PyValue, what: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new CorruptFileError(
        `${where}: expected ${what} to be a non-negative integer, got ${describePy(value)}`,
      );
    }
    return value;
  };
  const ints = (value: PyValue, what: string): number[] => {
    if (!(value instanceof PyTuple))
      throw new CorruptFileError(`${where}: expected ${what} to be a tuple, got ${describePy(value)}`);
    if (value.items.length > MAX_TORCH_DIMS) {
      throw new CorruptFileError(
        `${where}: ${what} has ${value.items.length} dimensions, more than torch's ${MAX_TORCH_DIMS}`,
      );
    }
    return value.items.map((v, i) => int(v, `${what}[${i}]`));
  };

  function rebuildTensor(args: readonly PyValue[]): TorchTensorRef {
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args.length !== 6 && args.length !== 7) {
      throw new CorruptFileError(
        `${where}: torch._utils._rebuild_tensor_v2 expects 6 or 7 arguments, got ${args.length}`,
      );
    }
    const storage = args[0] as PyValue;
    if (!(storage instanceof PyStorage)) {
      throw new CorruptFileError(
        `${where}: torch._utils._rebuild_tensor_v2 expects a storage first, got ${describePy(storage)}`,
      );
    }
    const offset = int(args[1] as PyValue, 'a tensor storage offset');
    const shape = ints(args[2] as PyValue, 'a tensor size');
    const stride = ints(args[3] as PyValue, 'a tensor stride');
    if (stride.length !== shape.length) {
      throw new CorruptFileError(
        `${where}: a tensor of size ${formatShape(shape)} has stride ${formatShape(stride)}, of another rank`,
      );
    }
    if (typeof args[4] !== 'boolean') {
      throw new CorruptFileError(`${where}: expected requires_grad to be a bool, got ${describePy(args[4])}`);
    }
    for (const extra of args.slice(5)) {
      // backward_hooks (an OrderedDict; any hook in it would have been a refused global) and metadata.
      if (extra !== null && !(extra instanceof PyDict)) {
        throw new CorruptFileError(
          `${where}: expected backward_hooks/metadata to be a dict, got ${describePy(extra)}`,
        );
      }
    }
    // The view must stay within its storage: the last element it reaches is offset + sum((size-1)*stride).
    let elements = 1;
    let last = offset;
    for (let i = 0; i < shape.length; i++) {
      elements *= shape[i] as number;
      if ((shape[i] as number) > 0) last += ((shape[i] as number) - 1) * (stride[i] as number);
    }
    const describe = `a ${storage.dtype} tensor of size ${formatShape(shape)}, stride ${formatShape(stride)}, offset ${offset}`;
    if (!Number.isSafeInteger(elements) || !Number.isSafeInteger(elements * dtypeByteSize(storage.dtype))) {
      throw new CorruptFileError(`${where}: ${describe} is too large`);
    }
    if (elements > 0 && (!Number.isSafeInteger(last) || last >= storage.numel)) {
      throw new CorruptFileError(
        `${where}: ${describe} reaches element ${last} of storage ${quoteName(storage.key)}, which has ${storage.numel}`,
      );
    }
    if (elements > storage.numel && elements * dtypeByteSize(storage.dtype) > limits.maxExpandedBytes) {
      throw new CorruptFileError(
        `${where}: ${describe} has more elements than its storage ${quoteName(storage.key)} (${storage.numel}); reading it would take ${elements * dtypeByteSize(storage.dtype)} bytes, more than the limit of ${limits.maxExpandedBytes} (limits.maxExpandedBytes)`,
      );
    }
    if (elements === 0 && offset > storage.numel) {
      throw new CorruptFileError(
        `${where}: ${describe} starts past the end of storage ${quoteName(storage.key)} (${storage.numel} elements)`,
      );
    }
    return new TorchTensorRef(storage.dtype, shape, stride, offset, storage.key, storage.numel, args[4]);
  }

  function storageFromPid(pid: PyValue): PyStorage {
    // ('storage', torch.XStorage, key, location, numel), as torch.serialization's persistent_id writes it.
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      throw new CorruptFileError(
        `${where}: expected a persistent id ('storage', type, key, location, numel), got ${describePy(pid)}`,
      );
    }
    const [, type, key, location, numelValue] = pid.items;
    if (!(type instanceof PyGlobal) || type.role.kind !== 'storage-type') {
      throw new CorruptFileError(
        `${where}: expected a torch storage type in a persistent id, got ${describePy(type)}`,
      );
    }
    if (typeof key !== 'string' || typeof location !== 'string') {
      throw new CorruptFileError(`${where}: expected the storage key and location to be strings`);
    }
    const numel = int(numelValue as PyValue, `the element count of storage ${quoteName(key)}`);
    const dtype: SafetensorsDtype = type.role.dtype;
    const seen = storages.get(key);
    if (seen !== undefined) {
      if (seen.dtype !== dtype || seen.numel !== numel) {
        throw new CorruptFileError(
          `${where}: storage ${quoteName(key)} is ${seen.dtype} x ${seen.numel} in one place and ${dtype} x ${numel} in another`,
        );
      }
      return seen;
    }
    const bytes = storageBytes(key);
    if (bytes === undefined) {
      throw new CorruptFileError(
        `${file}: storage ${quoteName(key)} has no data/${key} entry in the archive`,
      );
    }
    const expected = numel * dtypeByteSize(dtype);
    if (bytes !== expected) {
      throw new CorruptFileError(
        `${file}: storage ${quoteName(key)} is declared as ${numel} ${dtype} elements (${expected} bytes), but its data/${key} entry has ${bytes} bytes`,
      );
    }
    const storage = new PyStorage(key, dtype, numel);
    storages.set(key, storage);
    return storage;
  }

  return {
    global(module, name) {
      if (module === 'collections' && name === 'OrderedDict')
        return new PyGlobal(module, name, { kind: 'ordered-dict' });
      if (module === 'torch._utils' && name === '_rebuild_tensor_v2') {
        return new PyGlobal(module, name, { kind: 'rebuild-tensor' });
      }
      if (module === 'torch._utils' && name === '_rebuild_parameter') {
        return new PyGlobal(module, name, { kind: 'rebuild-parameter' });
      }
      if (module === 'torch' && /^[A-Za-z0-9_]+Storage$/.test(name)) {
        const dtype = storageDtype(name);
        if (dtype === undefined) {
          throw new CorruptFileError(
            `${where}: storage type torch.${name} is not supported (supported: ${TORCH_STORAGE_TYPES.map((t) => `torch.${t}`).join(', ')})`,
          );
        }
        return new PyGlobal(module, name, { kind: 'storage-type', dtype });
      }
      const shown = `${module}.${name}`.slice(0, 200);
      throw new UnsafePickleError(
        `${file}: data.pkl references the Python global ${shown}, which this reader refuses (a state dict needs only ${ALLOWED}); nothing in the file was executed. Load it in Python only if you trust its source, and re-save the state dict (or convert it to safetensors)`,
        shown,
      );
    },

    call(fn, args) {
      switch (fn.role.kind) {
        case 'ordered-dict':
          if (args.items.length !== 0) {
            throw new CorruptFileError(
              `${where}: collections.OrderedDict called with ${args.items.length} arguments, expected none`,
            );
          }
          return new PyDict();
        case 'rebuild-tensor':
          return rebuildTensor(args.items);
        case 'rebuild-parameter': {
          // _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself.
          const [data, requiresGrad] = args.items;
          if (
            args.items.length !== 3 ||
            !(data instanceof TorchTensorRef) ||
            typeof requiresGrad !== 'boolean'
          ) {
            throw new CorruptFileError(
              `${where}: torch._utils._rebuild_parameter expects (tensor, bool, hooks), got ${args.items.map((a) => describePy(a)).join(', ')}`,
            );
          }
          return new TorchTensorRef(
            data.dtype,
            data.shape,
            data.stride,
            data.storageOffset,
            data.storageKey,
            data.storageNumel,
            requiresGrad,
          );
        }
        case 'storage-type':
          throw new CorruptFileError(
            `${where}: ${fn.fullName} is called; storage types may only appear in persistent ids`,
          );
      }
    },

    persistentLoad: storageFromPid,

    build(target, state) {
      // An OrderedDict's instance dict: a state dict's `_metadata` (module versions). Kept, not used.
      if (target instanceof PyDict && state instanceof PyDict) {
        target.attributes = state;
        return;
      }
      throw new CorruptFileError(
        `${where}: BUILD sets the state of ${describePy(target)} from ${describePy(state)}; only a dict's attributes are accepted`,
      );
    },
  };
}
