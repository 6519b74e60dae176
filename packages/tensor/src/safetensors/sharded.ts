/**
 * Sharded checkpoints as Hugging Face transformers/diffusers write them: `<prefix>-00001-of-0000N.safetensors`
 * files plus `<prefix>.safetensors.index.json` = {"metadata": {"total_size": N}, "weight_map": {name: file}}.
 * Opening reads the index and every shard's header; tensor data is read lazily, one tensor at a time.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { CorruptFileError, InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { compareCodePoints } from './dtypes.js';
import type { SafetensorsTensorInfo } from './format.js';
import { quoteName } from './format.js';
import {
  describeJsonType,
  JsonNumber,
  JsonSyntaxError,
  type JsonValue,
  jsonToPlain,
  parseStrictJson,
} from './json.js';
import type { RawTensor } from './raw.js';
import {
  type OpenSafetensorsOptions,
  openSafetensors,
  type SafetensorsFile,
  type TensorReader,
  unknownTensorError,
} from './read.js';
import type { SafetensorsInput } from './source.js';
import {
  encodeTensor,
  layoutFile,
  type PlannedTensor,
  planTensors,
  type SerializeOptions,
  type TensorMap,
} from './write.js';
import { nodeImport } from '../node/node-import.js';

/** A parsed shard index. */
export interface ShardIndex {
  /** The index's "metadata" object (usually just total_size), as plain JSON. */
  metadata: Record<string, unknown>;
  /** metadata.total_size when present: the sum of the tensors' byte sizes. */
  totalSize: number | undefined;
  /** Tensor name -> shard file name, in index order. */
  weightMap: Map<string, string>;
}

/** True for a plain file name (no folder parts), the only thing a weight_map may point at. */
function isPlainFileName(file: string): boolean {
  return (
    file.length > 0 &&
    file !== '.' &&
    file !== '..' &&
    !file.includes('/') &&
    !file.includes('\\') &&
    !file.includes('\0') &&
    !/^[A-Za-z]:/.test(file)
  );
}

/**
 * Parses and validates a shard index (`*.safetensors.index.json`): a JSON object whose "weight_map" maps
 * tensor names to shard file names in the same folder, with an optional "metadata" object.
 *
 * @throws CorruptFileError naming `file` for invalid JSON, duplicate names, a missing or malformed
 *   weight_map, a shard name with folder parts, or a non-numeric total_size.
 */
export function parseShardIndex(text: string | Uint8Array, file = 'index'): ShardIndex {
  let json: string;
  if (typeof text === 'string') json = text;
  else {
    try {
      json = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw new CorruptFileError(
        `${file}: expected a UTF-8 JSON shard index, got bytes that are not valid UTF-8`,
      );
    }
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(json);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new CorruptFileError(`${file}: not valid JSON: ${e.message}`);
    throw e;
  }
  if (!(root instanceof Map)) {
    throw new CorruptFileError(
      `${file}: expected a JSON object with a weight_map, got ${describeJsonType(root)}`,
    );
  }
  const rawMap = root.get('weight_map');
  if (!(rawMap instanceof Map)) {
    throw new CorruptFileError(
      `${file}: expected "weight_map" to be an object of tensor name -> shard file, got ${describeJsonType(rawMap)}`,
    );
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of rawMap) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) {
      throw new CorruptFileError(
        `${file}: expected weight_map[${quoteName(name)}] to be a shard file name in the index's folder, got ${describeJsonType(shard)}`,
      );
    }
    weightMap.set(name, shard);
  }
  const rawMeta = root.get('metadata');
  let metadata: Record<string, unknown> = {};
  let totalSize: number | undefined;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!(rawMeta instanceof Map)) {
      throw new CorruptFileError(
        `${file}: expected "metadata" to be an object, got ${describeJsonType(rawMeta)}`,
      );
    }
    metadata = jsonToPlain(rawMeta) as Record<string, unknown>;
    const total = rawMeta.get('total_size');
    if (total !== undefined) {
      if (!(total instanceof JsonNumber) || !(total.value >= 0) || !Number.isFinite(total.value)) {
        throw new CorruptFileError(
          `${file}: expected metadata.total_size to be a non-negative number, got ${describeJsonType(total)}`,
        );
      }
      totalSize = total.value;
    }
  }
  return { metadata, totalSize, weightMap };
}

/** A sharded checkpoint opened for reading. */
export interface ShardedSafetensors extends TensorReader {
  /** The index's name in error messages (its path when opened from disk). */
  readonly name: string;
  /** The parsed index (for a single unsharded file: a synthesized one). */
  readonly index: ShardIndex;
  /** Shard file names, sorted. */
  readonly files: readonly string[];
  /** The shard holding a tensor. */
  shardOf(name: string): string;
}

/** Opens one shard by its file name (as written in the weight_map). */
export type ShardOpener = (file: string) => SafetensorsInput | Promise<SafetensorsInput>;

/**
 * Opens a sharded checkpoint from its index (JSON text or bytes) and a function that opens a shard by
 * file name: works with any source (files, fetch, Blobs). Every shard's header is read and every
 * weight_map entry checked against it; tensor data is read on demand.
 *
 * @throws CorruptFileError for a malformed index, a shard that is corrupt, or a weight_map entry whose
 *   shard lacks the tensor. Errors of `openShard` (e.g. a missing file) propagate.
 */
export async function openShardedSafetensorsFrom(
  index: string | Uint8Array | ShardIndex,
  openShard: ShardOpener,
  options: OpenSafetensorsOptions = {},
): Promise<ShardedSafetensors> {
  const name = options.name ?? 'index';
  const parsed =
    index instanceof Uint8Array || typeof index === 'string' ? parseShardIndex(index, name) : index;
  return openShards(name, parsed, openShard, (file) => file, options);
}

async function openShards(
  name: string,
  parsed: ShardIndex,
  openShard: ShardOpener,
  shardLabel: (file: string) => string,
  options: OpenSafetensorsOptions,
): Promise<ShardedReader> {
  const files = [...new Set(parsed.weightMap.values())].sort(compareCodePoints);
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const file of files) {
      const source = await openShard(file);
      shards.set(file, await openSafetensors(source, { ...options, name: shardLabel(file) }));
    }
    for (const [tensor, file] of parsed.weightMap) {
      const shard = shards.get(file) as SafetensorsFile;
      if (!shard.has(tensor)) {
        const sample = shard.names.slice(0, 3).map(quoteName).join(', ');
        throw new CorruptFileError(
          `${name}: weight_map puts tensor ${quoteName(tensor)} in ${file}, but that shard has no such tensor (it holds ${shard.names.length}${sample ? `: ${sample}${shard.names.length > 3 ? ', …' : ''}` : ''})`,
        );
      }
    }
  } catch (e) {
    await Promise.all([...shards.values()].map((s) => s.close().catch(() => undefined)));
    throw e;
  }
  return new ShardedReader(name, parsed, files, shards);
}

class ShardedReader implements ShardedSafetensors {
  readonly names: readonly string[];
  readonly tensors: readonly SafetensorsTensorInfo[];

  constructor(
    readonly name: string,
    readonly index: ShardIndex,
    readonly files: readonly string[],
    private readonly shards: Map<string, SafetensorsFile>,
  ) {
    this.names = [...index.weightMap.keys()];
    this.tensors = this.names.map((n) => this.shardFile(n).info(n));
  }

  /** The first shard's `__metadata__` (shards written together share it). */
  get metadata(): Readonly<Record<string, string>> | undefined {
    const first = this.files[0];
    return first === undefined ? undefined : this.shards.get(first)?.metadata;
  }

  private shardFile(name: string): SafetensorsFile {
    const file = this.index.weightMap.get(name);
    if (file === undefined) throw unknownTensorError(this.name, name, this.names);
    return this.shards.get(file) as SafetensorsFile;
  }

  has(name: string): boolean {
    return this.index.weightMap.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    return this.shardFile(name).info(name);
  }

  shardOf(name: string): string {
    this.shardFile(name);
    return this.index.weightMap.get(name) as string;
  }

  async readRaw(name: string): Promise<RawTensor> {
    return this.shardFile(name).readRaw(name);
  }

  async readTensor(name: string): Promise<tf.Tensor> {
    return this.shardFile(name).readTensor(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }
}

/** The standard index names, preferred in this order when a folder holds several. */
export const SHARD_INDEX_NAMES = [
  'model.safetensors.index.json',
  'diffusion_pytorch_model.safetensors.index.json',
];

/**
 * Opens a checkpoint in Node from an index path (`*.safetensors.index.json`), a single `.safetensors`
 * file, or a folder holding either (an index is preferred; `model` and `diffusion_pytorch_model` names
 * first). Shards are looked up next to the index.
 *
 * @throws CorruptFileError for a malformed index, a missing or corrupt shard, or a weight_map entry
 *   missing from its shard; InvalidArgumentError when the path holds no checkpoint.
 */
export async function openShardedSafetensors(
  path: string,
  options: OpenSafetensorsOptions = {},
): Promise<ShardedSafetensors> {
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  let stat: import('node:fs').Stats;
  try {
    stat = await fs.stat(path);
  } catch (e) {
    throw new InvalidArgumentError(`${path}: cannot open the checkpoint (${(e as Error).message})`);
  }
  let target = path;
  if (stat.isDirectory()) {
    const entries = (await fs.readdir(path)).sort(compareCodePoints);
    const indexes = entries.filter((f) => f.endsWith('.safetensors.index.json'));
    const preferred = SHARD_INDEX_NAMES.find((n) => indexes.includes(n));
    const singles = entries.filter((f) => f.endsWith('.safetensors'));
    if (preferred !== undefined || indexes.length === 1) {
      target = nodePath.join(path, preferred ?? (indexes[0] as string));
    } else if (indexes.length > 1) {
      throw new InvalidArgumentError(
        `${path}: expected one *.safetensors.index.json, found ${indexes.length} (${indexes.join(', ')}); pass the index path`,
      );
    } else if (singles.length === 1) {
      target = nodePath.join(path, singles[0] as string);
    } else {
      throw new InvalidArgumentError(
        `${path}: expected a *.safetensors.index.json or a single *.safetensors file, found ${singles.length === 0 ? 'neither' : `${singles.length} .safetensors files and no index`}`,
      );
    }
  }
  const dir = nodePath.dirname(target);
  if (!target.endsWith('.json')) {
    const file = await openSafetensors(target, options);
    const base = nodePath.basename(target);
    const index: ShardIndex = {
      metadata: {},
      totalSize: file.header.dataByteLength,
      weightMap: new Map(file.names.map((n) => [n, base])),
    };
    return new ShardedReader(options.name ?? target, index, [base], new Map([[base, file]]));
  }
  const indexBytes = await fs.readFile(target);
  const name = options.name ?? target;
  const parsed = parseShardIndex(
    new Uint8Array(indexBytes.buffer, indexBytes.byteOffset, indexBytes.byteLength),
    name,
  );
  return openShards(
    name,
    parsed,
    async (file) => {
      const shardPath = nodePath.join(dir, file);
      try {
        await fs.access(shardPath);
      } catch {
        throw new CorruptFileError(
          `${name}: weight_map refers to shard ${file}, which does not exist in ${dir}`,
        );
      }
      return shardPath;
    },
    (file) => nodePath.join(dir, file),
    options,
  );
}

/** Options of saveShardedSafetensors. */
export interface SaveShardedOptions extends SerializeOptions {
  /**
   * Largest shard, in bytes of tensor data (default 5 GB = 5e9, as huggingface_hub). A tensor larger
   * than this gets a shard of its own.
   */
  maxShardBytes?: number;
  /** File name prefix: `model` (default; transformers) or `diffusion_pytorch_model` (diffusers). */
  prefix?: string;
}

/** What saveShardedSafetensors wrote. */
export interface SavedCheckpoint {
  /** Shard file names (in `dir`), in order. */
  files: string[];
  /** The index file name, or undefined when everything fit one file (written as `<prefix>.safetensors`). */
  indexFile: string | undefined;
  /** Sum of the tensors' stored byte sizes (the index's total_size). */
  totalSize: number;
}

/** Splits planned tensors into shards like huggingface_hub: in order, a new shard when the next tensor would overflow. */
export function splitIntoShards<T extends { byteLength: number }>(
  tensors: readonly T[],
  maxShardBytes: number,
): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let currentSize = 0;
  for (const t of tensors) {
    if (t.byteLength > maxShardBytes) {
      shards.push([t]);
      continue;
    }
    if (currentSize + t.byteLength > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(t);
    currentSize += t.byteLength;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/** The shard index as JSON text, formatted like huggingface_hub (indent 2, keys sorted, trailing newline). */
export function formatShardIndex(totalSize: number, weightMap: ReadonlyMap<string, string>): string {
  const names = [...weightMap.keys()].sort(compareCodePoints);
  const lines = names.map((n) => `    ${JSON.stringify(n)}: ${JSON.stringify(weightMap.get(n))}`);
  return `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${lines.join(',\n')}\n  }\n}\n`;
}

/**
 * Writes a sharded checkpoint in Node: shards `<prefix>-00001-of-0000N.safetensors` of at most
 * `maxShardBytes` of tensor data each, then `<prefix>.safetensors.index.json`. When everything fits one
 * shard, writes `<prefix>.safetensors` and no index (as transformers does). Each file is written
 * atomically and the index last; on error the files written by this call are removed.
 *
 * @throws InvalidArgumentError for bad options or tensors (see serializeSafetensors).
 */
export async function saveShardedSafetensors(
  dir: string,
  tensors: TensorMap,
  options: SaveShardedOptions = {},
): Promise<SavedCheckpoint> {
  const maxShardBytes = options.maxShardBytes ?? 5_000_000_000;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes < 1) {
    throw new InvalidArgumentError(
      `maxShardBytes: expected a positive integer, got ${String(options.maxShardBytes)}`,
    );
  }
  const prefix = options.prefix ?? 'model';
  if (!isPlainFileName(prefix)) {
    throw new InvalidArgumentError(
      `prefix: expected a file name without folder parts, got ${JSON.stringify(prefix)}`,
    );
  }
  const planned = planTensors(tensors, options);
  const groups = splitIntoShards(planned, maxShardBytes);
  if (groups.length === 0) groups.push([]);
  const fs = await nodeImport<typeof import('node:fs/promises')>('node:fs/promises');
  const nodePath = await nodeImport<typeof import('node:path')>('node:path');
  await fs.mkdir(dir, { recursive: true });
  const width = Math.max(5, String(groups.length).length);
  const pad = (i: number): string => String(i).padStart(width, '0');
  const files =
    groups.length === 1
      ? [`${prefix}.safetensors`]
      : groups.map((_, i) => `${prefix}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const layouts = groups.map((g) => layoutFile(g, options.metadata));
  const written: string[] = [];
  const weightMap = new Map<string, string>();
  let totalSize = 0;
  try {
    for (const [i, layout] of layouts.entries()) {
      const file = files[i] as string;
      await writeFileAtomic(nodePath.join(dir, file), async (write) => {
        await write(layout.bytes);
        for (const p of layout.order as PlannedTensor[]) await write(await encodeTensor(p));
      });
      written.push(file);
      for (const p of layout.order) {
        weightMap.set(p.name, file);
        totalSize += p.byteLength;
      }
    }
    if (groups.length === 1) return { files, indexFile: undefined, totalSize };
    const indexFile = `${prefix}.safetensors.index.json`;
    const text = formatShardIndex(totalSize, weightMap);
    await writeFileAtomic(nodePath.join(dir, indexFile), (write) => write(new TextEncoder().encode(text)));
    return { files, indexFile, totalSize };
  } catch (e) {
    await Promise.all(
      written.map((f) => fs.rm(nodePath.join(dir, f), { force: true }).catch(() => undefined)),
    );
    throw e;
  }
}
