/**
 * A latent shard store: a folder of safetensors shards and a manifest naming them. It only ever grows,
 * one shard per `append`, and a crash at any moment leaves it valid:
 *
 * 1. the shard is written to a temporary file, fsynced, renamed to `shard-NNNNNN.safetensors`, and the
 *    folder fsynced;
 * 2. only then the manifest (the list of shards with their sizes, tensor names and SHA-256) is
 *    written the same way and renamed over `manifest.json`.
 *
 * A crash before step 2 completes leaves the old manifest, which does not list the new shard: on open,
 * unlisted shards are orphans, ignored (and removable with `removeOrphans`), and every listed shard is
 * verified (size and header, or the full checksum). A crash mid-write also leaves a temporary file
 * (`.shard-NNNNNN.safetensors.<pid>.<time>.<random>.tmp`, `.manifest.json.<...>.tmp`): the next open or
 * append deletes the store's own temporary files whose writer process is gone. One writer at a time.
 *
 * Tensors are read one at a time, each with a single read of its byte range: a loader streams latents
 * from disk without loading a shard.
 */
import {
  CorruptFileError,
  f16BitsToF32Bits,
  f32BitsToF16Bits,
  InvalidArgumentError,
  openSafetensors,
  type RawTensorInput,
  type SafetensorsFile,
  serializeSafetensors,
} from '@prfl/tensor';
import { isJsonObject, parseBoundedJson } from './bounded-json.js';
import { isProcessAlive, parseTempName, readFileNamed, syncDir, writeFileAtomic } from './files.js';
import { node } from './node.js';
import { previewValue } from './preview.js';
import { decodeUtf8 } from './utf8.js';

export const MANIFEST_NAME = 'manifest.json';
export const STORE_FORMAT = 'prfl-latent-shards';
const SHARD_RE = /^shard-(\d{6,})\.safetensors$/;
/** Largest manifest accepted (about 100 bytes per shard plus its tensor names). */
export const MAX_STORE_MANIFEST_BYTES = 256 * 1024 * 1024;

/** One shard as the manifest lists it. */
export interface ShardEntry {
  file: string;
  bytes: number;
  sha256: string;
  tensors: string[];
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: 1;
  shards: ShardEntry[];
}

/** A tensor to store: float32 (stored as F32 or F16), int32, or raw safetensors input. */
export type StoredArray =
  | { shape: readonly number[]; data: Float32Array }
  | { shape: readonly number[]; data: Int32Array }
  | RawTensorInput;

/** A tensor read back: floats always as float32. */
export interface LoadedArray {
  shape: number[];
  dtype: string;
  data: Float32Array | Int32Array | Uint8Array;
}

export interface OpenStoreOptions {
  /** Create the folder and an empty manifest when missing (default false: a missing store is an error). */
  create?: boolean;
  /**
   * How listed shards are checked on open: 'header' (default: exists, size, header parses, names match
   * the manifest), 'checksum' (also SHA-256 of the whole file), 'size' (exists and size only).
   */
  verify?: 'size' | 'header' | 'checksum';
  /** Shard files kept open for reading (default 8). */
  maxOpenShards?: number;
}

export interface AppendOptions {
  /** Storage of float32 arrays (default 'F32'; 'F16' halves the size, values are rounded to half). */
  floatStorage?: 'F32' | 'F16';
  /** The shard's safetensors `__metadata__`. */
  metadata?: Record<string, string>;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Parses a store's manifest.json (strict UTF-8, bounded size and depth) and checks its structure.
 * `file` names it in errors.
 * @throws CorruptFileError naming the file and the first bad entry.
 */
export function parseStoreManifest(bytes: Uint8Array, file: string): StoreManifest {
  if (bytes.length > MAX_STORE_MANIFEST_BYTES) {
    throw new CorruptFileError(
      `${file}: manifest of ${bytes.length} bytes is larger than the ${MAX_STORE_MANIFEST_BYTES} accepted`,
    );
  }
  const m = parseBoundedJson(decodeUtf8(bytes, file), file);
  if (
    !isJsonObject(m) ||
    !Object.hasOwn(m, 'format') ||
    m.format !== STORE_FORMAT ||
    m.version !== 1 ||
    !Array.isArray(m.shards)
  ) {
    throw new CorruptFileError(
      `${file}: expected {"format": "${STORE_FORMAT}", "version": 1, "shards": [...]}, got ${previewValue(m)}`,
    );
  }
  const shards = m.shards as unknown[];
  shards.forEach((s, i) => {
    const e = s as Partial<Record<keyof ShardEntry, unknown>>;
    if (
      !isJsonObject(s) ||
      typeof e.file !== 'string' ||
      !SHARD_RE.test(e.file) ||
      !Number.isSafeInteger(e.bytes) ||
      (e.bytes as number) < 0 ||
      typeof e.sha256 !== 'string' ||
      !Array.isArray(e.tensors) ||
      e.tensors.some((t) => typeof t !== 'string')
    ) {
      throw new CorruptFileError(
        `${file}: shards[${i}] must be {file: "shard-NNNNNN.safetensors", bytes, sha256, tensors: [names]}, got ${previewValue(s)}`,
      );
    }
  });
  return m as unknown as StoreManifest;
}

/** A temporary file this store's writes make (a shard's or the manifest's, as @prfl/tensor names them). */
function isStoreTempName(name: string): boolean {
  const t = parseTempName(name);
  return t !== undefined && (t.target === MANIFEST_NAME || SHARD_RE.test(t.target));
}

/**
 * Deletes the store's temporary files whose writer process is no longer running on this machine: what
 * a killed write leaves. A live writer's file is kept (its pid still runs), and so is anything not
 * named like the store's own temporary files. Best effort: a read-only store keeps them. Returns the
 * names deleted.
 */
async function removeStaleTemps(dir: string): Promise<string[]> {
  const { fs, path } = await node();
  const removed: string[] = [];
  for (const name of await fs.readdir(dir)) {
    if (!isStoreTempName(name)) continue;
    if (isProcessAlive((parseTempName(name) as { pid: number }).pid)) continue;
    try {
      await fs.rm(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // no permission: leave it, open() lists it as an orphan
    }
  }
  if (removed.length) await syncDir(dir);
  return removed;
}

function toRawInput(name: string, array: StoredArray, floatStorage: 'F32' | 'F16'): RawTensorInput {
  if ('dtype' in array) return array;
  const { shape, data } = array as { shape: readonly number[]; data: Float32Array | Int32Array };
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new InvalidArgumentError(`append: "${name}" has a bad shape ${previewValue(shape)}`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new InvalidArgumentError(
      `append: "${name}" has shape [${shape.join(', ')}] (${n} values) but ${data.length} values`,
    );
  }
  if (data instanceof Int32Array) return { dtype: 'I32', shape, data };
  if (!(data instanceof Float32Array)) {
    throw new InvalidArgumentError(
      `append: "${name}" must be a Float32Array or Int32Array (or a raw {dtype, shape, data}), got ${Object.prototype.toString.call(data)}`,
    );
  }
  if (floatStorage === 'F32') return { dtype: 'F32', shape, data };
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const half = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) half[i] = f32BitsToF16Bits(bits[i] as number);
  return { dtype: 'F16', shape, data: half };
}

/** Decodes stored bytes to float32 (all float dtypes), int32 (I32) or bytes (U8/BOOL). */
function decode(dtype: string, shape: number[], bytes: Uint8Array, where: string): LoadedArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return { shape, dtype, data: out };
    }
    case 'F16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = f16BitsToF32Bits(view.getUint16(2 * i, true));
      return { shape, dtype, data: out };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return { shape, dtype, data: out };
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      return { shape, dtype, data: out };
    }
    case 'U8':
    case 'BOOL':
      return { shape, dtype, data: copy };
    default:
      throw new CorruptFileError(
        `${where}: stored dtype ${dtype} is not one the store reads (F32, F16, F64, I32, U8, BOOL)`,
      );
  }
}

export class LatentShardStore {
  private manifest: StoreManifest;
  private readonly where = new Map<string, ShardEntry>();
  private readonly open = new Map<string, Promise<SafetensorsFile>>();
  private closed = false;

  private constructor(
    /** The store's folder (absolute). */
    readonly dir: string,
    manifest: StoreManifest,
    /**
     * Found on open and ignored: unlisted shards (a crash between a shard's rename and the manifest's)
     * and temporary files of a writer that still runs (those of dead writers are deleted on open).
     */
    readonly orphans: readonly string[],
    private readonly maxOpen: number,
  ) {
    this.manifest = manifest;
    for (const s of manifest.shards) for (const t of s.tensors) this.where.set(t, s);
  }

  /**
   * Opens (or with `create`, creates) a store and checks it.
   * @throws InvalidArgumentError when the folder or manifest is missing (without `create`);
   *   CorruptFileError naming the shard when a listed shard is missing, truncated or altered.
   */
  static async open(dir: string, options: OpenStoreOptions = {}): Promise<LatentShardStore> {
    const { fs, path } = await node();
    const root = path.resolve(dir);
    const manifestPath = path.join(root, MANIFEST_NAME);
    let manifest: StoreManifest;
    let bytes: Uint8Array | undefined;
    try {
      const size = (await fs.stat(manifestPath)).size;
      if (size > MAX_STORE_MANIFEST_BYTES) {
        throw new CorruptFileError(
          `${manifestPath}: manifest of ${size} bytes is larger than the ${MAX_STORE_MANIFEST_BYTES} accepted`,
        );
      }
      bytes = new Uint8Array(await fs.readFile(manifestPath));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EISDIR') throw new CorruptFileError(`${manifestPath}: expected a file, got a folder`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    }
    if (bytes === undefined) {
      if (!options.create) {
        throw new InvalidArgumentError(
          `latent store: no ${MANIFEST_NAME} in ${root} (pass { create: true } to make a new store)`,
        );
      }
      await fs.mkdir(root, { recursive: true });
      manifest = { format: STORE_FORMAT, version: 1, shards: [] };
      await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
    } else {
      manifest = parseStoreManifest(bytes, manifestPath);
    }
    await removeStaleTemps(root);
    // Duplicate names across shards would make reads ambiguous.
    const seen = new Map<string, string>();
    for (const s of manifest.shards) {
      for (const t of s.tensors) {
        const prev = seen.get(t);
        if (prev)
          throw new CorruptFileError(
            `${manifestPath}: tensor ${previewValue(t)} is listed in both ${prev} and ${s.file}`,
          );
        seen.set(t, s.file);
      }
    }
    const verify = options.verify ?? 'header';
    for (const s of manifest.shards) {
      const file = path.join(root, s.file);
      let size: number;
      try {
        size = (await fs.stat(file)).size;
      } catch {
        throw new CorruptFileError(`${manifestPath} lists ${s.file} but ${file} is missing`);
      }
      if (size !== s.bytes) {
        throw new CorruptFileError(
          `${file}: ${size} bytes, the manifest says ${s.bytes} (truncated or altered)`,
        );
      }
      if (verify === 'checksum') {
        const digest = await sha256(await readFileNamed(file, 'shard'));
        if (digest !== s.sha256)
          throw new CorruptFileError(`${file}: SHA-256 ${digest} differs from the manifest's ${s.sha256}`);
      } else if (verify === 'header') {
        const st = await openSafetensors(file);
        try {
          const names = [...st.names].sort();
          const listed = [...s.tensors].sort();
          if (names.length !== listed.length || names.some((n, i) => n !== listed[i])) {
            throw new CorruptFileError(
              `${file}: holds ${names.length} tensors, the manifest lists ${listed.length} different ones`,
            );
          }
        } finally {
          await st.close();
        }
      }
    }
    const listed = new Set(manifest.shards.map((s) => s.file));
    const orphans = (await fs.readdir(root)).filter(
      (name) => (isStoreTempName(name) || SHARD_RE.test(name)) && !listed.has(name),
    );
    return new LatentShardStore(root, manifest, orphans.sort(), options.maxOpenShards ?? 8);
  }

  /** Number of tensors. */
  get size(): number {
    return this.where.size;
  }

  /** The shards, in append order. */
  get shards(): readonly ShardEntry[] {
    return this.manifest.shards;
  }

  /** Every tensor name, in append order. */
  keys(): string[] {
    return this.manifest.shards.flatMap((s) => s.tensors);
  }

  has(key: string): boolean {
    return this.where.has(key);
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new InvalidArgumentError(`latent store ${this.dir}: ${what} after close()`);
  }

  /**
   * Writes `tensors` as one new shard, then lists it in the manifest (see the file comment for why a
   * crash cannot leave the store inconsistent). Names must be new to the store.
   */
  async append(
    tensors: Readonly<Record<string, StoredArray>>,
    options: AppendOptions = {},
  ): Promise<ShardEntry> {
    this.assertOpen('append');
    const { fs, path } = await node();
    const names = Object.keys(tensors);
    if (names.length === 0) throw new InvalidArgumentError('append: no tensors given');
    for (const n of names) {
      if (this.where.has(n))
        throw new InvalidArgumentError(`append: "${n}" is already in the store (${this.where.get(n)?.file})`);
    }
    const raw: Record<string, RawTensorInput> = {};
    for (const n of names) raw[n] = toRawInput(n, tensors[n] as StoredArray, options.floatStorage ?? 'F32');
    const bytes = await serializeSafetensors(raw, options.metadata ? { metadata: options.metadata } : {});
    await removeStaleTemps(this.dir);
    // Next index after every shard file present, listed or orphaned, so an orphan is never reused.
    const present = (await fs.readdir(this.dir))
      .map((n) => SHARD_RE.exec(n)?.[1])
      .filter((x): x is string => !!x);
    // A loop, not Math.max(...all): spreading a list of 100k shards as arguments overflows the stack.
    let last = -1;
    for (const n of present) last = Math.max(last, Number(n));
    for (const s of this.manifest.shards) last = Math.max(last, Number(SHARD_RE.exec(s.file)?.[1]));
    const next = last + 1;
    const file = `shard-${String(next).padStart(6, '0')}.safetensors`;
    await writeFileAtomic(path.join(this.dir, file), bytes);
    const entry: ShardEntry = { file, bytes: bytes.length, sha256: await sha256(bytes), tensors: names };
    const manifest: StoreManifest = { ...this.manifest, shards: [...this.manifest.shards, entry] };
    await writeFileAtomic(path.join(this.dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 1)}\n`);
    this.manifest = manifest;
    for (const n of names) this.where.set(n, entry);
    return entry;
  }

  private async shard(entry: ShardEntry): Promise<SafetensorsFile> {
    let f = this.open.get(entry.file);
    if (f) {
      // Most recently used last.
      this.open.delete(entry.file);
      this.open.set(entry.file, f);
      return f;
    }
    const { path } = await node();
    // The store may have been closed while node() resolved; a handle opened now would never be closed.
    this.assertOpen('read');
    const raced = this.open.get(entry.file);
    if (raced) return raced;
    f = openSafetensors(path.join(this.dir, entry.file));
    this.open.set(entry.file, f);
    while (this.open.size > this.maxOpen) {
      const [oldest, handle] = this.open.entries().next().value as [string, Promise<SafetensorsFile>];
      this.open.delete(oldest);
      handle.then((h) => h.close()).catch(() => undefined);
    }
    return f;
  }

  /** dtype and shape of a stored tensor. */
  async info(key: string): Promise<{ dtype: string; shape: number[]; shard: string }> {
    this.assertOpen('info');
    const entry = this.where.get(key);
    if (!entry) throw this.unknown(key);
    const i = (await this.shard(entry)).info(key);
    return { dtype: i.dtype, shape: [...i.shape], shard: entry.file };
  }

  /** Reads one tensor (one read of its byte range); floats come back as float32. */
  async read(key: string): Promise<LoadedArray> {
    this.assertOpen('read');
    const entry = this.where.get(key);
    if (!entry) throw this.unknown(key);
    const raw = await (await this.shard(entry)).readRaw(key);
    return decode(raw.dtype, raw.shape, raw.data, `${this.dir}/${entry.file}: "${key}"`);
  }

  private unknown(key: string): InvalidArgumentError {
    const some = this.keys().slice(0, 3);
    return new InvalidArgumentError(
      `latent store ${this.dir}: no tensor "${key}" (${this.size} stored${some.length ? `, e.g. ${some.map((s) => `"${s}"`).join(', ')}` : ''})`,
    );
  }

  /**
   * Deletes the orphans found on open (unlisted shards, and temporary files of writers that were still
   * running: only call this when no other process writes to the store). Returns their names.
   */
  async removeOrphans(): Promise<string[]> {
    this.assertOpen('removeOrphans');
    const { fs, path } = await node();
    const listed = new Set(this.manifest.shards.map((s) => s.file));
    const removed: string[] = [];
    for (const name of this.orphans) {
      if (listed.has(name)) continue;
      await fs.rm(path.join(this.dir, name), { force: true });
      removed.push(name);
    }
    await syncDir(this.dir);
    return removed;
  }

  /** Closes the open shard files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const handles = [...this.open.values()];
    this.open.clear();
    await Promise.all(handles.map((h) => h.then((f) => f.close()).catch(() => undefined)));
  }
}
