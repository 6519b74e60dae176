/**
 * Key prefixes of state dicts: training scripts save `{"state_dict": model.state_dict()}` (names come out
 * as `state_dict.fc.weight`) and DistributedDataParallel adds `module.`. These helpers take one level
 * off, for a reader or for loaded tensors; which prefix to take off is the caller's decision.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError } from '../errors.js';
import type { SafetensorsTensorInfo } from '../safetensors/format.js';
import type { RawTensor } from '../safetensors/raw.js';
import { type TensorReader, unknownTensorError } from '../safetensors/read.js';

/**
 * A view of `reader` holding only the tensors whose names start with `prefix`, under the rest of their
 * names (`withoutPrefix(reader, 'state_dict.')`). Reads go to `reader`; `close()` closes it.
 *
 * @throws InvalidArgumentError when no tensor has the prefix (the message lists a few names).
 */
export function withoutPrefix(
  reader: TensorReader,
  prefix: string,
): TensorReader & { readonly name: string } {
  const inner = new Map<string, string>();
  const tensors: SafetensorsTensorInfo[] = [];
  for (const t of reader.tensors) {
    if (!t.name.startsWith(prefix)) continue;
    const name = t.name.slice(prefix.length);
    inner.set(name, t.name);
    tensors.push({ ...t, name });
  }
  const what = 'name' in reader && typeof reader.name === 'string' ? reader.name : 'weights';
  if (inner.size === 0) {
    throw new InvalidArgumentError(
      `${what}: no tensor name starts with ${JSON.stringify(prefix)} (names are e.g. ${reader.names
        .slice(0, 3)
        .map((n) => JSON.stringify(n))
        .join(', ')})`,
    );
  }
  const names = tensors.map((t) => t.name);
  const original = (name: string): string => {
    const n = inner.get(name);
    if (n === undefined) throw unknownTensorError(`${what} (without ${JSON.stringify(prefix)})`, name, names);
    return n;
  };
  return {
    name: what,
    tensors,
    names,
    metadata: reader.metadata,
    has: (name) => inner.has(name),
    info: (name) => ({ ...reader.info(original(name)), name }),
    readRaw: (name): Promise<RawTensor> => reader.readRaw(original(name)),
    readTensor: (name): Promise<tf.Tensor> => reader.readTensor(original(name)),
    close: () => reader.close(),
  };
}

/**
 * `tensors` with `prefix` taken off every key that has it; keys without it are dropped. Accepts a record
 * (what loadWeights returns) or a Map; returns a Map in the same order. The values are not copied.
 */
export function stripKeyPrefix<T>(
  tensors: Readonly<Record<string, T>> | ReadonlyMap<string, T>,
  prefix: string,
): Map<string, T> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, T>);
  const out = new Map<string, T>();
  for (const [k, v] of entries) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}
